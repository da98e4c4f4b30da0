package authz

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
)

// Sentinel errors of [EdgeAuthenticator.VerifyPassword]; compare with
// [errors.Is].
var (
	// ErrLoginRefused reports an unknown user or a wrong password.
	ErrLoginRefused = errors.New("authz: login refused")
	// ErrLoginThrottled reports a login refused without a password check
	// because the user name, the source address, or the same user and
	// password failed too often recently (see [EdgeAuthConfig].FailureBurst).
	ErrLoginThrottled = errors.New("authz: login throttled")
	// ErrLoginBusy reports a login refused because no bcrypt turn came
	// within [EdgeAuthConfig].MaxBcryptWait.
	ErrLoginBusy = errors.New("authz: login shed, password checks busy")
)

// VerifyPassword checks user's password the way [EdgeAuthenticator.Check]
// checks a NATS login of the same user, through the same credential table,
// verified-credential cache, bcrypt bound and failure throttling, with src
// (the client's address, nil for none) as the source address the
// throttling counts failures by. It is how the HTTP gateway authenticates a
// device with the bcrypt hash of the device's own NATS login.
//
// It returns the user's generated permissions when the password is
// accepted (the current one, or the previous one within its overlap
// window), and otherwise an error wrapping [ErrLoginRefused],
// [ErrLoginThrottled] or [ErrLoginBusy]. The counters of [AuthStats] count
// it as a login.
func (a *EdgeAuthenticator) VerifyPassword(user, password string, src net.Addr) (Permissions, error) {
	if user == "" || password == "" {
		a.rejected.Add(1)
		return Permissions{}, fmt.Errorf("%w: no user and password", ErrLoginRefused)
	}
	u := a.table.Load().users[user]
	if u == nil {
		a.rejected.Add(1)
		return Permissions{}, fmt.Errorf("%w: unknown user %q", ErrLoginRefused, user)
	}
	if _, err := a.verify(u, password, a.now(), sourceOf(src)); err != nil {
		a.rejected.Add(1)
		switch {
		case errors.Is(err, errBusy):
			return Permissions{}, fmt.Errorf("%w: %w", ErrLoginBusy, err)
		case errors.Is(err, errWrongPassword):
			a.events.log(a.log, slog.LevelWarn, SecurityLoginFailed, "authz: login refused",
				logKeyUser, user, logKeySource, sourceOf(src), logKeyReason, err.Error())
			return Permissions{}, fmt.Errorf("%w: user %q: %w", ErrLoginRefused, user, err)
		default:
			a.events.log(a.log, slog.LevelWarn, SecurityLoginThrottled, "authz: login throttled",
				logKeyUser, user, logKeySource, sourceOf(src), logKeyReason, err.Error())
			return Permissions{}, fmt.Errorf("%w: user %q: %w", ErrLoginThrottled, user, err)
		}
	}
	a.accepted.Add(1)
	return u.perms, nil
}
