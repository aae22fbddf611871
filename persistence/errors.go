package persistence

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors returned by Store methods.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a row with that key exists already.
	ErrConflict = errors.New("already exists")
	// ErrVersionMismatch: the stored version is not the one the caller expected.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrCouponUnknown: no coupon code of that name was issued (unknown, or in a pool but
	// never issued). It matches ErrNotFound too.
	ErrCouponUnknown = fmt.Errorf("unknown coupon code: %w", ErrNotFound)
	// ErrCouponOtherUser: the coupon code was issued to another user.
	ErrCouponOtherUser = errors.New("issued to another user")
	// ErrCouponExpired: the coupon code is past its expiry.
	ErrCouponExpired = errors.New("expired")
	// ErrCouponRedeemed: the coupon code was redeemed (for another order).
	ErrCouponRedeemed = errors.New("already redeemed")
	// ErrLastAdmin: the change would leave no enabled admin with the admin role.
	ErrLastAdmin = errors.New("last enabled admin")
)

// translate maps driver errors to the package's sentinels.
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return errors.Join(ErrConflict, err)
	}
	return err
}
