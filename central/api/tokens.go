package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/internal/atomicfile"
)

// tokenPrefix begins every API token: "lintel_" {id} "_" {secret}.
const tokenPrefix = "lintel_"

// lastUsedEvery is how stale a token's LastUsed may get before a use
// writes it again.
const lastUsedEvery = time.Minute

// TokenBucket names the KV bucket on central holding org's API tokens.
func TokenBucket(org string) string { return "api-tokens-" + org }

// Token is an API token as stored and listed: never the token itself,
// only the SHA-256 hash of it.
type Token struct {
	ID        string    `json:"id"`                   // its id
	Name      string    `json:"name"`                 // its name
	Role      Role      `json:"role"`                 // its role
	Created   time.Time `json:"created"`              // when it was created
	CreatedBy string    `json:"created_by"`           // who created it
	LastUsed  time.Time `json:"last_used,omitzero"`   // when it last authenticated a request (to the minute)
	Revoked   time.Time `json:"revoked,omitzero"`     // when it was revoked; zero while valid
	RevokedBy string    `json:"revoked_by,omitempty"` // who revoked it
	Hash      string    `json:"-"`                    // the SHA-256 of the token, hex; never serialised
}

// storedToken is Token's bucket form, with the hash.
type storedToken struct {
	Token
	Hash string `json:"hash"`
}

type tokenStore struct {
	kv jetstream.KeyValue
}

func openTokenStore(ctx context.Context, js jetstream.JetStream, org string, replicas int) (*tokenStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: TokenBucket(org),
		Description: "Lintel API tokens (hashed)", Storage: jetstream.FileStorage, History: 1, Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("api: token bucket: %w", err)
	}
	return &tokenStore{kv: kv}, nil
}

// newToken returns a new token string and its id.
func newToken() (token, id string) {
	var idb [8]byte
	var sec [32]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(sec[:])
	id = hex.EncodeToString(idb[:])
	return tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(sec[:]), id
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// parseToken returns the id of a token of the form tokenPrefix id "_"
// secret.
func parseToken(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", false
	}
	id, sec, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(sec) != 43 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

func (ts *tokenStore) get(ctx context.Context, id string) (*Token, uint64, error) {
	e, err := ts.kv.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	var st storedToken
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("api: token %s: %w", id, err)
	}
	t := st.Token
	t.Hash = st.Hash
	return &t, e.Revision(), nil
}

func (ts *tokenStore) put(ctx context.Context, t *Token, rev uint64) error {
	b, err := json.Marshal(storedToken{Token: *t, Hash: t.Hash})
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = ts.kv.Create(ctx, t.ID, b)
	} else {
		_, err = ts.kv.Update(ctx, t.ID, b, rev)
	}
	return err
}

// create stores a new token and returns it with the token string, which
// is never stored and cannot be shown again.
func (ts *tokenStore) create(ctx context.Context, name string, role Role, by string) (*Token, string, error) {
	token, id := newToken()
	t := &Token{ID: id, Name: name, Role: role, Created: time.Now().UTC(), CreatedBy: by, Hash: hashToken(token)}
	if err := ts.put(ctx, t, 0); err != nil {
		return nil, "", fmt.Errorf("api: store token: %w", err)
	}
	return t, token, nil
}

// verify returns the principal of a bearer API token, or a 401 problem
// for a token that is malformed, unknown, revoked or does not match.
func (ts *tokenStore) verify(ctx context.Context, token string) (*Principal, error) {
	refused := problemf(http.StatusUnauthorized, slugUnauthorized, "Authorization", "the API token is not valid (unknown, revoked or malformed)")
	id, ok := parseToken(token)
	if !ok {
		return nil, refused
	}
	t, rev, err := ts.get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, refused
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(t.Hash)) != 1 || !t.Revoked.IsZero() {
		return nil, refused
	}
	if now := time.Now(); now.Sub(t.LastUsed) > lastUsedEvery {
		t.LastUsed = now.UTC()
		_ = ts.put(ctx, t, rev) // a concurrent use wrote it; either is fine
	}
	return &Principal{Subject: "token:" + t.ID, Name: t.Name, Via: "token", Role: t.Role, token: t.ID}, nil
}

// list returns every token, revoked ones included, oldest first.
func (ts *tokenStore) list(ctx context.Context) ([]*Token, error) {
	lister, err := ts.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Token
	for k := range lister.Keys() {
		t, _, err := ts.get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// revoke marks token id revoked; it returns the token before and after.
func (ts *tokenStore) revoke(ctx context.Context, id, by string) (before, after *Token, err error) {
	t, rev, err := ts.get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, problemf(http.StatusNotFound, slugNotFound, "id", "no API token %q", id)
	}
	if err != nil {
		return nil, nil, err
	}
	b := *t
	if t.Revoked.IsZero() {
		t.Revoked, t.RevokedBy = time.Now().UTC(), by
		if err := ts.put(ctx, t, rev); err != nil {
			return nil, nil, fmt.Errorf("api: revoke token %s: %w", id, err)
		}
	}
	return &b, t, nil
}

// bootstrap makes sure the file at path holds an admin token the store
// knows: it creates one when the file does not exist, and registers the
// file's token again when the store lacks it (a new store). A token in
// the file that the store holds as revoked stays revoked: the start fails.
func (ts *tokenStore) bootstrap(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, token, err := ts.create(ctx, "bootstrap", RoleAdmin, "bootstrap")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBootstrapToken, path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBootstrapToken, err)
	}
	token := strings.TrimSpace(string(data))
	id, ok := parseToken(token)
	if !ok {
		return fmt.Errorf("%w: %s does not hold an API token (lintel_ID_SECRET)", ErrBootstrapToken, path)
	}
	t, _, err := ts.get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		t = &Token{ID: id, Name: "bootstrap", Role: RoleAdmin, Created: time.Now().UTC(), CreatedBy: "bootstrap", Hash: hashToken(token)}
		if err := ts.put(ctx, t, 0); err != nil {
			return fmt.Errorf("api: register the bootstrap token: %w", err)
		}
		return nil
	case err != nil:
		return err
	case t.Hash != hashToken(token):
		return fmt.Errorf("%w: %s: the token store holds another token under its id", ErrBootstrapToken, path)
	case !t.Revoked.IsZero():
		return fmt.Errorf("%w: %s: the token was revoked; remove the file to create a new one", ErrBootstrapToken, path)
	}
	return nil
}
