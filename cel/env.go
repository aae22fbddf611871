package cel

import (
	"fmt"
	"reflect"
	"time"

	celgo "github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// userVal is the user variable: the user's state before the event, with the event's
// time for the history functions (user.spent_within and friends).
type userVal struct {
	u   *loyalty.User
	now time.Time
}

// Input is what a rule is evaluated against. Event must be set; a nil User is treated as
// a user with no history. The rule's now is Event.OccurredAt.
type Input struct {
	Event *event.Event
	// User is the user's state before the event, as rules see it: the rules read
	// Tier, Points, LifetimePoints, PurchaseCount, TotalSpent, FirstSeen, LastPurchaseAt,
	// EventCounts, RewardCounts (as user.rewards) and History; RewardDays drives
	// limits.per_user_per_day. It is not modified.
	User *loyalty.User
	// Skip, when set, leaves out the campaigns it returns true for (e.g. those whose
	// budget is spent), as if they were not active.
	Skip func(c *campaign.Campaign) bool
}

// CEL type names of the event and user variables, as type(event) shows them.
const (
	eventTypeName = "campaign.Event"
	userTypeName  = "campaign.User"
)

// Size bounds used by the cost estimator. The event's follow its contract, which ingress
// enforces (DESIGN §4): at most 256 entries in any object or list of attributes, and no
// string longer than the 64 KiB event. The user's are typical, not enforced: expressions
// that range over them run under RuntimeCostLimit.
const (
	maxAttributeEntries = event.MaxAttributeEntries // entries of event.attributes and of any list or map in it
	maxAttributeString  = event.MaxSize             // chars of a string inside event.attributes
	maxEventCounts      = 64                        // distinct event types in user.event_counts
	maxUserRewards      = 256                       // campaigns in user.rewards
	maxSourceChars      = 8192                      // code points of a rule or points expression
)

var (
	eventType = celgo.ObjectType(eventTypeName)
	userType  = celgo.ObjectType(userTypeName)
	mapOfDyn  = celgo.MapType(celgo.StringType, celgo.DynType)
	mapOfInt  = celgo.MapType(celgo.StringType, celgo.IntType)
)

// objectType describes one of our two struct types to the checker and interpreter.
type objectType struct {
	typ    *types.Type
	fields map[string]*types.FieldType
	names  []string
	sizes  map[string]uint64 // max size of string, list and map fields, for cost estimates
}

func (o *objectType) add(name string, t *types.Type, size uint64, isSet func(any) bool, get func(any) any) {
	o.fields[name] = &types.FieldType{
		Type:    t,
		IsSet:   isSet,
		GetFrom: func(target any) (any, error) { return get(target), nil },
	}
	o.names = append(o.names, name)
	if size > 0 {
		o.sizes[name] = size
	}
}

func newObjectType(t *types.Type) *objectType {
	return &objectType{typ: t, fields: map[string]*types.FieldType{}, sizes: map[string]uint64{}}
}

// emptyUser stands in for a nil Input.User.
var emptyUser = &loyalty.User{}

// ev and usr convert a field getter's target. Targets are always what the activation
// resolved, so the assertion holds; a wrong type panics and is reported as ErrPanic.
func ev(target any) *event.Event   { return target.(*event.Event) }
func usr(target any) *loyalty.User { return target.(*userVal).u }

var eventObject, userObject = func() (*objectType, *objectType) {
	e := newObjectType(eventType)
	e.add("id", celgo.StringType, 128,
		func(t any) bool { return ev(t).ID != "" },
		func(t any) any { return types.String(ev(t).ID) })
	e.add("user_id", celgo.StringType, 256,
		func(t any) bool { return ev(t).UserID != "" },
		func(t any) any { return types.String(ev(t).UserID) })
	e.add("type", celgo.StringType, 64,
		func(t any) bool { return ev(t).Type != "" },
		func(t any) any { return types.String(ev(t).Type) })
	e.add("amount", celgo.DoubleType, 0,
		func(t any) bool { return ev(t).Amount != 0 },
		func(t any) any { return types.Double(ev(t).Amount) })
	e.add("currency", celgo.StringType, 8,
		func(t any) bool { return ev(t).Currency != "" },
		func(t any) any { return types.String(ev(t).Currency) })
	e.add("occurred_at", celgo.TimestampType, 0,
		func(t any) bool { return !ev(t).OccurredAt.IsZero() },
		func(t any) any { return types.Timestamp{Time: ev(t).OccurredAt} })
	// The raw map lets the interpreter's map[string]any fast path look keys up.
	e.add("attributes", mapOfDyn, maxAttributeEntries,
		func(t any) bool { return len(ev(t).Attributes) > 0 },
		func(t any) any { return ev(t).Attributes })

	u := newObjectType(userType)
	u.add("tier", celgo.StringType, 64,
		func(t any) bool { return usr(t).Tier != "" },
		func(t any) any { return types.String(usr(t).Tier) })
	u.add("points", celgo.IntType, 0,
		func(t any) bool { return usr(t).Points != 0 },
		func(t any) any { return types.Int(usr(t).Points) })
	u.add("lifetime_points", celgo.IntType, 0,
		func(t any) bool { return usr(t).LifetimePoints != 0 },
		func(t any) any { return types.Int(usr(t).LifetimePoints) })
	u.add("purchase_count", celgo.IntType, 0,
		func(t any) bool { return usr(t).PurchaseCount != 0 },
		func(t any) any { return types.Int(usr(t).PurchaseCount) })
	u.add("total_spent", celgo.DoubleType, 0,
		func(t any) bool { return usr(t).TotalSpent != 0 },
		func(t any) any { return types.Double(usr(t).TotalSpent) })
	u.add("first_seen", celgo.TimestampType, 0,
		func(t any) bool { return !usr(t).FirstSeen.IsZero() },
		func(t any) any { return types.Timestamp{Time: usr(t).FirstSeen} })
	u.add("last_purchase_at", celgo.TimestampType, 0,
		func(t any) bool { return usr(t).LastPurchaseAt != nil },
		func(t any) any {
			if p := usr(t).LastPurchaseAt; p != nil {
				return types.Timestamp{Time: *p}
			}
			return types.Timestamp{}
		})
	u.add("event_counts", mapOfInt, maxEventCounts,
		func(t any) bool { return len(usr(t).EventCounts) > 0 },
		func(t any) any { return usr(t).EventCounts })
	u.add("rewards", mapOfInt, maxUserRewards,
		func(t any) bool { return len(usr(t).RewardCounts) > 0 },
		func(t any) any { return usr(t).RewardCounts })
	return e, u
}()

// typeProvider adds the event and user struct types to cel-go's default provider and
// adapter.
type typeProvider struct {
	types.Provider
	base    types.Adapter
	objects map[string]*objectType
}

func (p *typeProvider) FindStructType(name string) (*types.Type, bool) {
	if o, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(o.typ), true
	}
	return p.Provider.FindStructType(name)
}

func (p *typeProvider) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.objects[name]; ok {
		return o.names, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *typeProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if o, ok := p.objects[name]; ok {
		f, ok := o.fields[field]
		return f, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p *typeProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("%s cannot be constructed in a rule", name)
	}
	return p.Provider.NewValue(name, fields)
}

func (p *typeProvider) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case *event.Event:
		return objectVal{typ: eventType, v: v}
	case *userVal:
		return objectVal{typ: userType, v: v}
	}
	return p.base.NativeToValue(v)
}

// objectVal is event or user as a whole CEL value (rules seldom need it: field access
// goes through the field getters).
type objectVal struct {
	typ *types.Type
	v   any
}

func (o objectVal) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(o.v).AssignableTo(t) {
		return o.v, nil
	}
	return nil, fmt.Errorf("type conversion error from %s to %v", o.typ.TypeName(), t)
}

func (o objectVal) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.TypeType:
		return o.typ
	case o.typ:
		return o
	}
	return types.NewErr("type conversion error from '%s' to '%s'", o.typ.TypeName(), t.TypeName())
}

func (o objectVal) Equal(other ref.Val) ref.Val {
	ov, ok := other.(objectVal)
	return types.Bool(ok && ov.v == o.v)
}

func (o objectVal) Type() ref.Type { return o.typ }
func (o objectVal) Value() any     { return o.v }

// withObjectTypes installs typeProvider over the environment's current provider.
func withObjectTypes(env *celgo.Env) (*celgo.Env, error) {
	p := &typeProvider{
		Provider: env.CELTypeProvider(),
		base:     env.CELTypeAdapter(),
		objects:  map[string]*objectType{eventTypeName: eventObject, userTypeName: userObject},
	}
	env, err := celgo.CustomTypeAdapter(p)(env)
	if err != nil {
		return nil, err
	}
	return celgo.CustomTypeProvider(p)(env)
}

// celEnv is the one environment every rule and points expression compiles in.
var celEnv = func() *celgo.Env {
	env, err := celgo.NewEnv(
		celgo.Variable("event", eventType),
		celgo.Variable("user", userType),
		celgo.Variable("now", celgo.TimestampType),
		celgo.CrossTypeNumericComparisons(true),
		celgo.OptionalTypes(),
		celgo.DefaultUTCTimeZone(true),
		celgo.ParserExpressionSizeLimit(maxSourceChars),
		ext.Strings(),
		ext.Math(),
		celgo.Lib(historyLib{}),
		// Last: libraries above register types, which needs the default registry.
		withObjectTypes,
	)
	if err != nil {
		panic(fmt.Sprintf("cel: build environment: %v", err))
	}
	return env
}()

// activation resolves the three variables without building a map per evaluation.
type activation struct {
	ev   *event.Event
	user userVal
}

func newActivation(in *Input) (*activation, error) {
	if in == nil || in.Event == nil {
		return nil, fmt.Errorf("evaluate rule: input has no event")
	}
	u := emptyUser
	if in.User != nil {
		u = in.User
	}
	return &activation{ev: in.Event, user: userVal{u: u, now: in.Event.OccurredAt}}, nil
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.ev, true
	case "user":
		return &a.user, true
	case "now":
		return types.Timestamp{Time: a.ev.OccurredAt}, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// historyLib installs the history member functions of user.
type historyLib struct{}

func (historyLib) CompileOptions() []celgo.EnvOption     { return historyFunctions() }
func (historyLib) ProgramOptions() []celgo.ProgramOption { return nil }
