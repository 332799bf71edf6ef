package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validBucket(s string) bool { return nameRE.MatchString(s) }

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// leaseKey is the KV key of a rule's evaluation window.
func leaseKey(rule string, window time.Time) string {
	return fmt.Sprintf("%s.%d", rule, window.Unix())
}

// lease reports whether this replica won the rule's window: the first
// Create of the window's key wins; the bucket's TTL removes old keys.
func (a *Alerts) lease(ctx context.Context, rule string, window time.Time) (bool, error) {
	_, err := a.kv.Create(ctx, leaseKey(rule, window), []byte(a.cfg.Instance))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	default:
		return false, fmt.Errorf("lease %s: %w", leaseKey(rule, window), err)
	}
}
