package query

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/schemas"
)

// Key roles.
const (
	RoleReseller = "reseller"
	RoleOperator = "operator"
)

// keyPrefix starts every API key, so a leaked one is recognisable.
const keyPrefix = "tly_"

// ErrKeyNotFound is returned by RevokeKey for an unknown key id.
var ErrKeyNotFound = errors.New("no such key")

const (
	insertKeySQL  = `INSERT INTO api_keys (key_id, key_hash, name, role, reseller_id, revenue_enabled, revoked, created_at, updated_at, version)`
	selectKeysSQL = `SELECT key_id, key_hash, name, role, reseller_id, revenue_enabled, revoked, created_at, updated_at, version
FROM api_keys FINAL
ORDER BY created_at, key_id`
	selectKeyByIDSQL = `SELECT key_id, key_hash, name, role, reseller_id, revenue_enabled, revoked, created_at, updated_at, version
FROM api_keys FINAL
WHERE key_id = ?`
	selectKeyByHashSQL = `SELECT key_id, key_hash, name, role, reseller_id, revenue_enabled, revoked, created_at, updated_at, version
FROM api_keys FINAL
WHERE key_hash = ?
ORDER BY key_id
LIMIT 1`
	lookupKeySQL = `SELECT key_id, name, role, reseller_id, revenue_enabled, revoked
FROM api_keys FINAL
WHERE key_hash = ?
ORDER BY key_id
LIMIT 1`
)

// KeySpec describes a key to create.
type KeySpec struct {
	// Name says who or what uses the key (required).
	Name string
	// ResellerID is the reseller the key sees; empty for an operator key.
	ResellerID string
	// Operator makes an operator key (sees every reseller, ?reseller= picks one).
	Operator bool
	// Revenue lets a reseller key see revenue (MRR) in /v1/overview.
	// Operator keys always see it.
	Revenue bool
}

// Validate reports whether the spec makes a usable key.
func (s KeySpec) Validate() error {
	switch {
	case strings.TrimSpace(s.Name) == "":
		return errors.New("key name required")
	case s.Operator && s.ResellerID != "":
		return errors.New("an operator key has no reseller")
	case !s.Operator && !schemas.ValidToken(s.ResellerID):
		return fmt.Errorf("reseller %q: want 1-64 of [A-Za-z0-9_-]", s.ResellerID)
	}
	return nil
}

// Key is a stored API key (never the secret itself).
type Key struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	ResellerID string    `json:"reseller_id,omitempty"`
	Revenue    bool      `json:"revenue_enabled"`
	Revoked    bool      `json:"revoked"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	hash       string
	version    uint64
}

func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateKey stores a new key and returns it with its secret, the only time
// the secret is available.
func CreateKey(ctx context.Context, conn driver.Conn, spec KeySpec, now time.Time) (Key, string, error) {
	if err := spec.Validate(); err != nil {
		return Key{}, "", err
	}
	idb, secb := make([]byte, 6), make([]byte, 24)
	if _, err := rand.Read(idb); err != nil {
		return Key{}, "", fmt.Errorf("random key id: %w", err)
	}
	if _, err := rand.Read(secb); err != nil {
		return Key{}, "", fmt.Errorf("random key: %w", err)
	}
	id := hex.EncodeToString(idb)
	secret := keyPrefix + id + "_" + hex.EncodeToString(secb)
	k := Key{
		ID: id, Name: strings.TrimSpace(spec.Name), Role: RoleReseller, ResellerID: spec.ResellerID,
		Revenue: spec.Revenue, CreatedAt: now.UTC().Truncate(time.Second), UpdatedAt: now.UTC().Truncate(time.Second),
		hash: hashKey(secret), version: uint64(now.UnixNano()),
	}
	if spec.Operator {
		k.Role, k.Revenue = RoleOperator, true
	}
	if err := writeKey(ctx, conn, k); err != nil {
		return Key{}, "", err
	}
	return k, secret, nil
}

// RevokeKey marks the key revoked; query services stop accepting it within
// their key cache TTL. Revoking a revoked key is a no-op.
func RevokeKey(ctx context.Context, conn driver.Conn, id string, now time.Time) (Key, error) {
	keys, err := readKeys(ctx, conn, selectKeyByIDSQL, id)
	if err != nil {
		return Key{}, err
	}
	if len(keys) == 0 {
		return Key{}, fmt.Errorf("key %q: %w", id, ErrKeyNotFound)
	}
	k := keys[0]
	if k.Revoked {
		return k, nil
	}
	k.Revoked = true
	k.UpdatedAt = now.UTC().Truncate(time.Second)
	k.version = max(k.version+1, uint64(now.UnixNano()))
	if err := writeKey(ctx, conn, k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// LookupKey returns the stored key whose secret this is (revoked or not),
// or ErrKeyNotFound.
func LookupKey(ctx context.Context, conn driver.Conn, secret string) (Key, error) {
	keys, err := readKeys(ctx, conn, selectKeyByHashSQL, hashKey(secret))
	if err != nil {
		return Key{}, err
	}
	if len(keys) == 0 {
		return Key{}, ErrKeyNotFound
	}
	return keys[0], nil
}

// ListKeys returns every key, revoked ones included, oldest first.
func ListKeys(ctx context.Context, conn driver.Conn) ([]Key, error) {
	return readKeys(ctx, conn, selectKeysSQL)
}

func writeKey(ctx context.Context, conn driver.Conn, k Key) error {
	b, err := conn.PrepareBatch(ctx, insertKeySQL)
	if err != nil {
		return fmt.Errorf("insert key: %w", err)
	}
	if err := b.Append(k.ID, k.hash, k.Name, k.Role, k.ResellerID, boolByte(k.Revenue), boolByte(k.Revoked),
		k.CreatedAt, k.UpdatedAt, k.version); err != nil {
		_ = b.Abort()
		return fmt.Errorf("insert key: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert key: %w", err)
	}
	return nil
}

func readKeys(ctx context.Context, conn driver.Conn, sql string, args ...any) ([]Key, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		var rev, revoked uint8
		if err := rows.Scan(&k.ID, &k.hash, &k.Name, &k.Role, &k.ResellerID, &rev, &revoked, &k.CreatedAt, &k.UpdatedAt, &k.version); err != nil {
			return nil, fmt.Errorf("read keys: %w", err)
		}
		k.Revenue, k.Revoked = rev == 1, revoked == 1
		k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return out, nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// principal is who a request's key belongs to.
type principal struct {
	keyID    string
	keyName  string
	operator bool
	reseller string // empty for the operator
	revenue  bool
}

// keyCache resolves key hashes to principals, remembering each answer
// (including "unknown" and "revoked") for ttl.
type keyCache struct {
	conn driver.Conn
	ttl  time.Duration

	mu      sync.Mutex
	entries map[string]keyEntry
}

type keyEntry struct {
	p       *principal // nil: unknown or revoked
	expires time.Time
}

// maxCachedKeys bounds the cache against floods of made-up keys.
const maxCachedKeys = 10_000

func newKeyCache(conn driver.Conn, ttl time.Duration) *keyCache {
	return &keyCache{conn: conn, ttl: ttl, entries: map[string]keyEntry{}}
}

// lookup returns the principal of secret, or nil if the key is unknown or revoked.
func (kc *keyCache) lookup(ctx context.Context, secret string) (*principal, error) {
	h := hashKey(secret)
	// Wall time, even when tests fix the API clock.
	now := time.Now()
	kc.mu.Lock()
	e, ok := kc.entries[h]
	kc.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, nil
	}
	var (
		id, name, role   string
		reseller         string
		revenue, revoked uint8
		p                *principal
	)
	err := kc.conn.QueryRow(ctx, lookupKeySQL, h).Scan(&id, &name, &role, &reseller, &revenue, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("look up key: %w", err)
	case revoked == 0:
		p = &principal{keyID: id, keyName: name, operator: role == RoleOperator, reseller: reseller, revenue: revenue == 1 || role == RoleOperator}
	}
	kc.mu.Lock()
	if len(kc.entries) >= maxCachedKeys {
		kc.entries = map[string]keyEntry{}
	}
	kc.entries[h] = keyEntry{p: p, expires: now.Add(kc.ttl)}
	kc.mu.Unlock()
	return p, nil
}
