package ingress

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// The reference page: rendered on the server from /openapi.json's bytes, with its
// stylesheet from the binary, no script and nothing fetched from elsewhere.
var (
	//go:embed docs.tmpl
	docsTemplateText string
	//go:embed docs.css
	docsCSS []byte
)

// docsCSP lets the page load its own stylesheet and nothing else.
const docsCSP = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// apiDocs holds /openapi.json and /docs, built once from the route table on first use
// (the table is fixed once the server is built). It is safe for concurrent use.
type apiDocs struct {
	s    *Server
	once sync.Once
	json []byte
	html []byte
	err  error
}

func (d *apiDocs) build() error {
	d.once.Do(func() {
		d.json, d.err = json.Marshal(d.s.openapiDoc())
		if d.err != nil {
			d.err = fmt.Errorf("encode the OpenAPI document: %w", d.err)
			return
		}
		if d.html, d.err = renderDocs(d.json); d.err != nil {
			d.err = fmt.Errorf("render /docs: %w", d.err)
		}
	})
	return d.err
}

func (d *apiDocs) openapi(c *fiber.Ctx) error {
	if err := d.build(); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(d.json)
}

func (d *apiDocs) page(c *fiber.Ctx) error {
	if err := d.build(); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Content-Security-Policy", docsCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Send(d.html)
}

func (d *apiDocs) stylesheet(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(docsCSS)
}

// The parts of an OpenAPI document the page shows.
type (
	specDoc struct {
		Info struct {
			Title, Version, Description string
		}
		Servers []struct{ URL, Description string }
		Tags    []struct{ Name, Description string }
		Paths   map[string]map[string]*specOp
		// Components are what $refs point at.
		Components struct {
			Schemas         map[string]*specSchema
			Parameters      map[string]*specParam
			Headers         map[string]*specHeader
			SecuritySchemes map[string]*struct {
				Type, Scheme, In, Name, Description string
			} `json:"securitySchemes"`
		}
	}
	specOp struct {
		OperationID string `json:"operationId"`
		Summary     string
		Description string
		Tags        []string
		Access      string `json:"x-access"`
		Security    []map[string][]string
		Parameters  []*specParam
		RequestBody *struct {
			Required bool
			Content  map[string]*specMedia
		} `json:"requestBody"`
		Responses map[string]*specResponse
		// Filled in for the page.
		Method, Path string
	}
	specParam struct {
		Ref         string `json:"$ref"`
		Name, In    string
		Description string
		Required    bool
		Schema      *specSchema
		Example     any
	}
	specMedia struct {
		Schema  *specSchema
		Example any
	}
	specResponse struct {
		Description string
		Headers     map[string]*specHeader
		Content     map[string]*specMedia
	}
	specHeader struct {
		Ref         string `json:"$ref"`
		Description string
		Schema      *specSchema
	}
	specSchema struct {
		Ref                  string `json:"$ref"`
		Type                 string
		Format               string
		Title                string
		Description          string
		Pattern              string
		Enum                 []any
		Default              any
		Minimum, Maximum     *float64
		ExclusiveMinimum     *float64 `json:"exclusiveMinimum"`
		MinLength, MaxLength *int
		MinItems, MaxItems   *int
		ReadOnly             bool `json:"readOnly"`
		Required             []string
		Properties           map[string]*specSchema
		Items                *specSchema
		AdditionalProperties json.RawMessage `json:"additionalProperties"`
		OneOf                []*specSchema   `json:"oneOf"`
	}
)

// docsPage is what the template renders.
type docsPage struct {
	Doc      *specDoc
	Sections []docsSection
	Schemas  []docsSchema
	Security []docsSecurity
}

type docsSection struct {
	Tag, Description, Anchor string
	Ops                      []*specOp
}

type docsSchema struct {
	Name   string
	Schema *specSchema
}

type docsSecurity struct{ Name, What, Description string }

// methodOrder sorts the operations of one path.
var methodOrder = map[string]int{"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}

// renderDocs renders the reference page from an OpenAPI document's JSON: its operations
// grouped by tag (in the document's order), with parameters, bodies, responses and
// examples, then every schema.
func renderDocs(doc []byte) ([]byte, error) {
	var d specDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	page := docsPage{Doc: &d, Sections: docsSections(&d), Schemas: docsSchemas(&d), Security: docsSecuritySchemes(&d)}
	t, err := docsTemplate(&docsRenderer{doc: &d})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, page); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// docsSections groups the document's operations by their first tag, in the order of
// the document's tags, then those of no listed tag under "Other". Within a section
// operations are sorted by path, then method.
func docsSections(d *specDoc) []docsSection {
	byTag := map[string][]*specOp{}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		methods := make([]string, 0, len(d.Paths[p]))
		for m := range d.Paths[p] {
			methods = append(methods, m)
		}
		sort.Slice(methods, func(i, j int) bool { return methodOrder[methods[i]] < methodOrder[methods[j]] })
		for _, m := range methods {
			op := d.Paths[p][m]
			op.Method, op.Path = strings.ToUpper(m), p
			tag := "Other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			byTag[tag] = append(byTag[tag], op)
		}
	}
	var sections []docsSection
	for _, t := range d.Tags {
		if ops := byTag[t.Name]; len(ops) > 0 {
			sections = append(sections, docsSection{Tag: t.Name, Description: t.Description, Anchor: "tag-" + slug(t.Name), Ops: ops})
			delete(byTag, t.Name)
		}
	}
	if ops := byTag["Other"]; len(ops) > 0 {
		sections = append(sections, docsSection{Tag: "Other", Anchor: "tag-other", Ops: ops})
	}
	return sections
}

// docsSchemas lists the document's component schemas by name.
func docsSchemas(d *specDoc) []docsSchema {
	names := make([]string, 0, len(d.Components.Schemas))
	for n := range d.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	var schemas []docsSchema
	for _, n := range names {
		schemas = append(schemas, docsSchema{Name: n, Schema: d.Components.Schemas[n]})
	}
	return schemas
}

// docsSecuritySchemes lists the document's security schemes by name, each with a
// sentence saying what it is.
func docsSecuritySchemes(d *specDoc) []docsSecurity {
	schemes := make([]string, 0, len(d.Components.SecuritySchemes))
	for n := range d.Components.SecuritySchemes {
		schemes = append(schemes, n)
	}
	sort.Strings(schemes)
	var out []docsSecurity
	for _, n := range schemes {
		sc := d.Components.SecuritySchemes[n]
		what := sc.Type
		switch sc.Type {
		case "http":
			what = "HTTP " + sc.Scheme
		case "apiKey":
			what = "API key in the " + sc.Name + " " + sc.In
		}
		out = append(out, docsSecurity{Name: n, What: what, Description: sc.Description})
	}
	return out
}

// docsTemplate parses the page's template with the functions it calls, r resolving
// the document's $refs.
func docsTemplate(r *docsRenderer) (*template.Template, error) {
	return template.New("docs").Funcs(template.FuncMap{
		"md":          markdown,
		"typeof":      r.typeOf,
		"constraints": constraints,
		"json":        prettyJSON,
		"example":     exampleText,
		"params":      r.params,
		"header":      r.header,
		"statuses":    sortedStatuses,
		"security":    securityText,
		"lower":       strings.ToLower,
		"required":    func(s *specSchema, name string) bool { return slices.Contains(s.Required, name) },
		"props":       sortedProps,
		"hasProps":    func(s *specSchema) bool { return s != nil && len(s.Properties) > 0 },
		"mediaTypes":  sortedMedia,
	}).Parse(docsTemplateText)
}

// docsRenderer resolves the document's $refs for the template.
type docsRenderer struct{ doc *specDoc }

func refName(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

// params are an operation's parameters with $refs resolved.
func (r *docsRenderer) params(op *specOp) []*specParam {
	out := make([]*specParam, 0, len(op.Parameters))
	for _, p := range op.Parameters {
		if p.Ref != "" {
			if q := r.doc.Components.Parameters[refName(p.Ref)]; q != nil {
				p = q
			}
		}
		out = append(out, p)
	}
	return out
}

// header is a response header with its $ref resolved.
func (r *docsRenderer) header(h *specHeader) *specHeader {
	if h != nil && h.Ref != "" {
		if x := r.doc.Components.Headers[refName(h.Ref)]; x != nil {
			return x
		}
	}
	return h
}

// typeOf renders a schema's type in a few words, linking to named schemas.
func (r *docsRenderer) typeOf(s *specSchema) template.HTML {
	if s == nil {
		return "any"
	}
	if s.Ref != "" {
		n := refName(s.Ref)
		return template.HTML(`<a href="#schema-` + html.EscapeString(n) + `">` + html.EscapeString(n) + `</a>`) //nolint:gosec // the name is escaped
	}
	if len(s.OneOf) > 0 {
		var parts []string
		for _, o := range s.OneOf {
			parts = append(parts, string(r.typeOf(o)))
		}
		return template.HTML(strings.Join(parts, " or ")) //nolint:gosec // each part is a typeOf result, escaped
	}
	switch s.Type {
	case "":
		return "any"
	case "array":
		return "array of " + r.typeOf(s.Items)
	case "object":
		if len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{' {
			var v specSchema
			if json.Unmarshal(s.AdditionalProperties, &v) == nil {
				return "map of " + r.typeOf(&v)
			}
		}
	}
	t := html.EscapeString(s.Type)
	if s.Format != "" {
		t += " (" + html.EscapeString(s.Format) + ")"
	}
	return template.HTML(t) //nolint:gosec // the type and format are escaped
}

// constraints says what a schema allows beyond its type: values, pattern, bounds,
// default, read-only.
func constraints(s *specSchema) string {
	if s == nil {
		return ""
	}
	var parts []string
	if len(s.Enum) > 0 {
		vs := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			b, _ := json.Marshal(v)
			vs[i] = string(b)
		}
		parts = append(parts, "one of "+strings.Join(vs, ", "))
	}
	if s.Pattern != "" {
		parts = append(parts, "matches "+s.Pattern)
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	if s.Minimum != nil {
		parts = append(parts, "at least "+num(*s.Minimum))
	}
	if s.ExclusiveMinimum != nil {
		parts = append(parts, "more than "+num(*s.ExclusiveMinimum))
	}
	if s.Maximum != nil {
		parts = append(parts, "at most "+num(*s.Maximum))
	}
	if s.MinLength != nil || s.MaxLength != nil {
		parts = append(parts, bounds("characters", s.MinLength, s.MaxLength))
	}
	if s.MinItems != nil || s.MaxItems != nil {
		parts = append(parts, bounds("items", s.MinItems, s.MaxItems))
	}
	if s.Default != nil {
		b, _ := json.Marshal(s.Default)
		parts = append(parts, "default "+string(b))
	}
	if s.ReadOnly {
		parts = append(parts, "read-only")
	}
	return strings.Join(parts, "; ")
}

func bounds(what string, lo, hi *int) string {
	switch {
	case lo != nil && *lo == 1 && hi == nil:
		return "not empty"
	case lo != nil && hi != nil:
		return fmt.Sprintf("%d to %d %s", *lo, *hi, what)
	case lo != nil:
		return fmt.Sprintf("at least %d %s", *lo, what)
	}
	return fmt.Sprintf("at most %d %s", *hi, what)
}

type docsProp struct {
	Name   string
	Schema *specSchema
}

func sortedProps(s *specSchema) []docsProp {
	out := make([]docsProp, 0, len(s.Properties))
	for n, p := range s.Properties {
		out = append(out, docsProp{n, p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type docsMedia struct {
	Type  string
	Media *specMedia
}

func sortedMedia(c map[string]*specMedia) []docsMedia {
	out := make([]docsMedia, 0, len(c))
	for t, m := range c {
		out = append(out, docsMedia{t, m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

type docsStatus struct {
	Code     string
	Response *specResponse
}

func sortedStatuses(rs map[string]*specResponse) []docsStatus {
	out := make([]docsStatus, 0, len(rs))
	for c, r := range rs {
		out = append(out, docsStatus{c, r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// securityText says what credentials an operation needs.
func securityText(op *specOp) string {
	if len(op.Security) == 0 {
		return "public: no credentials"
	}
	var alts []string
	for _, req := range op.Security {
		for name := range req {
			alts = append(alts, name)
		}
	}
	sort.Strings(alts)
	s := strings.Join(alts, " or ")
	if op.Access != "" {
		s += " (" + op.Access + ")"
	}
	return s
}

// prettyJSON indents an example body.
func prettyJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the template escapes
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}

// exampleText shows a parameter's example as it is sent: a string as it is.
func exampleText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return prettyJSON(v)
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// markdown renders the little Markdown the document's descriptions use: paragraphs,
// pipe tables, `code`, **bold** and *italics*. Everything is escaped first.
func markdown(src string) template.HTML {
	var b strings.Builder
	for _, block := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n\n") {
		block = strings.TrimSpace(block)
		if block == "" {
			continue
		}
		lines := strings.Split(block, "\n")
		if isTable(lines) {
			b.WriteString("<table>")
			for i, l := range lines {
				if i == 1 {
					continue // the --- row
				}
				cell := "td"
				if i == 0 {
					cell = "th"
				}
				b.WriteString("<tr>")
				for _, c := range tableCells(l) {
					b.WriteString("<" + cell + ">" + inline(c) + "</" + cell + ">")
				}
				b.WriteString("</tr>")
			}
			b.WriteString("</table>\n")
			continue
		}
		b.WriteString("<p>" + inline(strings.Join(lines, " ")) + "</p>\n")
	}
	return template.HTML(b.String()) //nolint:gosec // every piece of text went through inline, which escapes it
}

func isTable(lines []string) bool {
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "|") || strings.Trim(lines[1], "|-: ") != "" {
		return false
	}
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "|") {
			return false
		}
	}
	return true
}

// tableCells splits a table row at the pipes that are not escaped (\|).
func tableCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

var (
	mdBold   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdItalic = regexp.MustCompile(`\*([^*\s][^*]*)\*`)
)

// inline escapes s and renders its code spans, bold and italics.
func inline(s string) string {
	parts := strings.Split(s, "`")
	for i, p := range parts {
		p = html.EscapeString(p)
		if i%2 == 1 && i < len(parts)-1 {
			parts[i] = "<code>" + p + "</code>"
			continue
		}
		if i%2 == 1 { // an unmatched backtick
			p = "`" + p
		}
		p = mdBold.ReplaceAllString(p, "<strong>$1</strong>")
		parts[i] = mdItalic.ReplaceAllString(p, "<em>$1</em>")
	}
	return strings.Join(parts, "")
}
