package authz_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// credClock is an injectable clock that tests move by hand.
type credClock struct {
	mu sync.Mutex
	t  time.Time
}

func newCredClock() *credClock {
	return &credClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *credClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *credClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// credGenerator returns a fast generator on clock.
func credGenerator(clock *credClock) *authz.Generator {
	return &authz.Generator{Cost: bcrypt.MinCost, Now: clock.Now}
}

func loadExample(t testing.TB) *authz.Inventory {
	t.Helper()
	inv, err := authz.LoadInventory(filepath.Join("testdata", "inventory.json"))
	if err != nil {
		t.Fatalf("LoadInventory: %v", err)
	}
	return inv
}

func mustGenerate(t testing.TB, g *authz.Generator, inv *authz.Inventory, st *authz.State) *authz.Result {
	t.Helper()
	res, err := g.Generate(context.Background(), inv, st)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return res
}

func stateJSON(t testing.TB, st *authz.State) []byte {
	t.Helper()
	data, err := authz.MarshalState(st)
	if err != nil {
		t.Fatalf("MarshalState: %v", err)
	}
	return data
}

func TestGenerateFirst(t *testing.T) {
	clock := newCredClock()
	inv := loadExample(t)
	res := mustGenerate(t, credGenerator(clock), inv, nil)
	users, edgeKeys := inv.Identities()

	if got := slices.Sorted(maps.Keys(res.State.Passwords)); !slices.Equal(got, users) {
		t.Errorf("state users = %v, want %v", got, users)
	}
	if got := res.Secrets.Users(); !slices.Equal(got, users) {
		t.Errorf("secret users = %v, want %v", got, users)
	}
	if got := res.Secrets.Edges(); !slices.Equal(got, edgeKeys) {
		t.Errorf("secret edges = %v, want %v", got, edgeKeys)
	}
	if want := slices.Sorted(slices.Values(append(slices.Clone(users), edgeKeys...))); !slices.Equal(res.Created, want) {
		t.Errorf("Created = %v, want %v", res.Created, want)
	}
	if len(res.Removed) != 0 || len(res.Rotated) != 0 {
		t.Errorf("Removed = %v, Rotated = %v", res.Removed, res.Rotated)
	}
	for _, u := range users {
		c := res.State.Passwords[u]
		pw := res.Secrets.Passwords[u].Reveal()
		if !c.Verify(pw, clock.Now()) {
			t.Errorf("%s: password does not verify", u)
		}
		if c.Verify(pw+"x", clock.Now()) {
			t.Errorf("%s: wrong password verifies", u)
		}
		if cost, _ := bcrypt.Cost([]byte(c.Hash)); cost != bcrypt.MinCost {
			t.Errorf("%s: cost %d", u, cost)
		}
		if !c.Created.Equal(clock.Now()) || !c.Rotated.IsZero() || c.PreviousHash != "" {
			t.Errorf("%s: credential %+v", u, c)
		}
	}
	for _, id := range edgeKeys {
		seed := res.Secrets.EdgeSeeds[id].Reveal()
		kp, err := nkeys.FromSeed([]byte(seed))
		if err != nil {
			t.Fatalf("%s: seed: %v", id, err)
		}
		pub, _ := kp.PublicKey()
		if k := res.State.EdgeKeys[id]; k.PublicKey != pub || !nkeys.IsValidPublicUserKey(pub) {
			t.Errorf("%s: state key %s, seed's key %s", id, k.PublicKey, pub)
		}
		// The key signs, and the public key in State verifies.
		sig, _ := kp.Sign([]byte("nonce"))
		verifier, _ := nkeys.FromPublicKey(res.State.EdgeKeys[id].PublicKey)
		if err := verifier.Verify([]byte("nonce"), sig); err != nil {
			t.Errorf("%s: signature: %v", id, err)
		}
	}
}

func TestGenerateKeepsExistingCredentials(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	inv := loadExample(t)
	first := mustGenerate(t, g, inv, nil)

	clock.Advance(time.Hour)
	inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "back-in"}})
	inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: "lab"})
	second := mustGenerate(t, g, inv, first.State)

	wantNew := []string{"_edge.acme.lab", "acme.hq.reader.back-in", "acme.lab"}
	if !slices.Equal(second.Created, wantNew) {
		t.Errorf("Created = %v, want %v", second.Created, wantNew)
	}
	if got := second.Secrets.Users(); !slices.Equal(got, []string{"_edge.acme.lab", "acme.hq.reader.back-in"}) {
		t.Errorf("new passwords for %v", got)
	}
	if got := second.Secrets.Edges(); !slices.Equal(got, []string{"acme.lab"}) {
		t.Errorf("new seeds for %v", got)
	}
	for u, c := range first.State.Passwords {
		if second.State.Passwords[u] != c {
			t.Errorf("%s changed: %+v -> %+v", u, c, second.State.Passwords[u])
		}
	}
	for id, k := range first.State.EdgeKeys {
		if second.State.EdgeKeys[id] != k {
			t.Errorf("%s changed", id)
		}
	}
	if c := second.State.Passwords["acme.hq.reader.back-in"]; !c.Created.Equal(clock.Now()) {
		t.Errorf("new credential created %v, want %v", c.Created, clock.Now())
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	inv := loadExample(t)
	first := mustGenerate(t, g, inv, nil)
	want := stateJSON(t, first.State)

	for i := range 3 {
		clock.Advance(24 * time.Hour) // the clock matters only for new credentials
		again := mustGenerate(t, g, inv, first.State)
		if got := stateJSON(t, again.State); !bytes.Equal(got, want) {
			t.Fatalf("run %d: state differs:\n%s\nwant\n%s", i, got, want)
		}
		if again.Secrets.Len() != 0 || len(again.Created) != 0 || len(again.Removed) != 0 {
			t.Errorf("run %d: secrets %v, created %v, removed %v", i, again.Secrets.Users(), again.Created, again.Removed)
		}
	}
}

func TestGenerateDoesNotMutateInput(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	inv := loadExample(t)
	st := mustGenerate(t, g, inv, nil).State
	before := stateJSON(t, st)
	invBefore, _ := json.Marshal(inv)

	inv2 := loadExample(t)
	inv2.Things = slices.DeleteFunc(inv2.Things, func(th authz.Thing) bool { return th.Code == "lobby-env" })
	inv2.Things = append(inv2.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "new"}})
	if _, err := g.Generate(context.Background(), inv2, st); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Rotate(context.Background(), st, "acme.hq", "acme.hq.reader.front-in"); err != nil {
		t.Fatal(err)
	}
	_ = st.Prune(clock.Now().Add(48 * time.Hour))
	if got := stateJSON(t, st); !bytes.Equal(got, before) {
		t.Errorf("input state modified")
	}
	if got, _ := json.Marshal(inv); !bytes.Equal(got, invBefore) {
		t.Errorf("input inventory modified")
	}
}

func TestGenerateRevokesRemovedIdentities(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	inv := loadExample(t)
	st := mustGenerate(t, g, inv, nil).State

	// Drop the warehouse edge with everything on it, and one service.
	inv.Edges = inv.Edges[:1]
	inv.Things = slices.DeleteFunc(inv.Things, func(th authz.Thing) bool { return th.Edge == "warehouse" })
	inv.Doors = slices.DeleteFunc(inv.Doors, func(d authz.Door) bool { return d.Edge == "warehouse" })
	inv.Services = slices.DeleteFunc(inv.Services, func(s authz.Service) bool { return s.Edge == "warehouse" || s.Name == "api" })
	res := mustGenerate(t, g, inv, st)

	want := []string{
		"_edge.acme.warehouse",
		"_svc.acme.api",
		"_svc.acme.gateway-warehouse",
		"acme.warehouse",
		"acme.warehouse.door_sensor.dock-1-contact",
		"acme.warehouse.lock.dock-1-lock",
		"acme.warehouse.reader.dock-1-in",
		"acme.warehouse.sensor.cold-store-env",
	}
	if !slices.Equal(res.Removed, want) {
		t.Errorf("Removed = %v\nwant %v", res.Removed, want)
	}
	for _, id := range want {
		if _, ok := res.State.Passwords[id]; ok {
			t.Errorf("%s still has a password", id)
		}
		if _, ok := res.State.EdgeKeys[id]; ok {
			t.Errorf("%s still has a key", id)
		}
	}
	if len(res.Created) != 0 {
		t.Errorf("Created = %v", res.Created)
	}
}

func TestGenerateRejectsInvalidInventory(t *testing.T) {
	inv := invFixture()
	inv.Things[0].Type = "_edge"
	res, err := credGenerator(newCredClock()).Generate(context.Background(), inv, nil)
	if res != nil || !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("Generate = %v, %v; want nil, ErrInvalid", res, err)
	}
}

func TestGenerateRejectsInvalidState(t *testing.T) {
	st := authz.NewState()
	st.Passwords["acme.hq.reader.r1"] = authz.PasswordCredential{Hash: "hunter2"} // clear text, not a hash
	res, err := credGenerator(newCredClock()).Generate(context.Background(), invFixture(), st)
	if res != nil || !errors.Is(err, authz.ErrInvalidState) {
		t.Errorf("Generate = %v, %v; want nil, ErrInvalidState", res, err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error repeats the value: %v", err)
	}
}

func TestGenerateCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := credGenerator(newCredClock()).Generate(ctx, invFixture(), nil)
	if res != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Generate = %v, %v; want nil, context.Canceled", res, err)
	}
}

func TestGeneratorOptions(t *testing.T) {
	tests := []struct {
		name string
		g    authz.Generator
	}{
		{"cost below minimum", authz.Generator{Cost: bcrypt.MinCost - 1}},
		{"cost above maximum", authz.Generator{Cost: bcrypt.MaxCost + 1}},
		{"negative workers", authz.Generator{Workers: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.g.Generate(context.Background(), invFixture(), nil)
			if !errors.Is(err, authz.ErrInvalidOption) {
				t.Errorf("Generate: %v, want ErrInvalidOption", err)
			}
			_, err = tt.g.Rotate(context.Background(), authz.NewState())
			if !errors.Is(err, authz.ErrInvalidOption) {
				t.Errorf("Rotate: %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestGenerateDefaultCost(t *testing.T) {
	if testing.Short() {
		t.Skip("bcrypt at the default cost is slow")
	}
	inv := &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}},
	}
	res, err := (&authz.Generator{}).Generate(context.Background(), inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(res.State.Passwords["_edge.acme.hq"].Hash)); cost != authz.DefaultCost {
		t.Errorf("cost = %d, want %d", cost, authz.DefaultCost)
	}
}

func TestRotatePasswordOverlap(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	g.Overlap = time.Hour
	const user = "acme.hq.reader.front-in"
	first := mustGenerate(t, g, loadExample(t), nil)
	oldPW := first.Secrets.Passwords[user].Reveal()

	clock.Advance(10 * time.Minute)
	rotatedAt := clock.Now()
	rot, err := g.Rotate(context.Background(), first.State, user)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rot.Rotated, []string{user}) || rot.Secrets.Len() != 1 {
		t.Fatalf("Rotated = %v, secrets for %v", rot.Rotated, rot.Secrets.Users())
	}
	newPW := rot.Secrets.Passwords[user].Reveal()
	c := rot.State.Passwords[user]
	if c.PreviousHash != first.State.Passwords[user].Hash {
		t.Errorf("PreviousHash is not the old hash")
	}
	if want := rotatedAt.Add(time.Hour); !c.PreviousUntil.Equal(want) || !c.Rotated.Equal(rotatedAt) {
		t.Errorf("PreviousUntil = %v, Rotated = %v; want %v, %v", c.PreviousUntil, c.Rotated, want, rotatedAt)
	}
	if !c.Created.Equal(first.State.Passwords[user].Created) {
		t.Errorf("Created changed")
	}
	// Other identities are untouched.
	for u, prev := range first.State.Passwords {
		if u != user && rot.State.Passwords[u] != prev {
			t.Errorf("%s changed", u)
		}
	}

	tests := []struct {
		at       time.Duration // after the rotation
		old, new bool
	}{
		{0, true, true},
		{59 * time.Minute, true, true},
		{time.Hour - time.Nanosecond, true, true},
		{time.Hour, false, true},
		{25 * time.Hour, false, true},
	}
	for _, tt := range tests {
		now := rotatedAt.Add(tt.at)
		if got := c.Verify(oldPW, now); got != tt.old {
			t.Errorf("at +%v: old password verifies = %v, want %v", tt.at, got, tt.old)
		}
		if got := c.Verify(newPW, now); got != tt.new {
			t.Errorf("at +%v: new password verifies = %v, want %v", tt.at, got, tt.new)
		}
		if got := c.InOverlap(now); got != tt.old {
			t.Errorf("at +%v: InOverlap = %v", tt.at, got)
		}
	}

	// Prune drops the previous hash only once the window has closed.
	if p := rot.State.Prune(rotatedAt.Add(time.Hour - time.Second)); p.Passwords[user].PreviousHash == "" {
		t.Errorf("pruned inside the window")
	}
	p := rot.State.Prune(rotatedAt.Add(time.Hour))
	if pc := p.Passwords[user]; pc.PreviousHash != "" || !pc.PreviousUntil.IsZero() || pc.Hash != c.Hash {
		t.Errorf("after Prune: %+v", pc)
	}
	if pc := p.Passwords[user]; pc.Verify(oldPW, rotatedAt) {
		t.Errorf("old password verifies after Prune")
	}
	if rot.State.Passwords[user].PreviousHash == "" {
		t.Errorf("Prune modified its receiver")
	}
}

func TestRotateTwiceDropsTheOldest(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	const user = "_svc.acme.ingest"
	first := mustGenerate(t, g, loadExample(t), nil)
	pw1 := first.Secrets.Passwords[user].Reveal()
	r2, err := g.Rotate(context.Background(), first.State, user)
	if err != nil {
		t.Fatal(err)
	}
	pw2 := r2.Secrets.Passwords[user].Reveal()
	clock.Advance(time.Minute)
	r3, err := g.Rotate(context.Background(), r2.State, user)
	if err != nil {
		t.Fatal(err)
	}
	pw3 := r3.Secrets.Passwords[user].Reveal()
	c := r3.State.Passwords[user]
	now := clock.Now()
	if c.Verify(pw1, now) || !c.Verify(pw2, now) || !c.Verify(pw3, now) {
		t.Errorf("after two rotations: pw1 %v, pw2 %v, pw3 %v; want false, true, true",
			c.Verify(pw1, now), c.Verify(pw2, now), c.Verify(pw3, now))
	}
}

func TestRotateWithoutOverlap(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	g.Overlap = -1
	first := mustGenerate(t, g, loadExample(t), nil)
	const user = "_edge.acme.hq"
	rot, err := g.Rotate(context.Background(), first.State, user, "acme.hq")
	if err != nil {
		t.Fatal(err)
	}
	c := rot.State.Passwords[user]
	if c.PreviousHash != "" || c.Verify(first.Secrets.Passwords[user].Reveal(), clock.Now()) {
		t.Errorf("old password survives a rotation without overlap: %+v", c)
	}
	if k := rot.State.EdgeKeys["acme.hq"]; k.PreviousPublicKey != "" || k.Accepts(first.State.EdgeKeys["acme.hq"].PublicKey, clock.Now()) {
		t.Errorf("old key survives a rotation without overlap: %+v", k)
	}
}

func TestRotateEdgeKeyOverlap(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock) // default overlap
	first := mustGenerate(t, g, loadExample(t), nil)
	const id = "acme.warehouse"
	oldKey := first.State.EdgeKeys[id].PublicKey

	rot, err := g.Rotate(context.Background(), first.State, id)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secrets.Len() != 1 || len(rot.Secrets.EdgeSeeds) != 1 {
		t.Fatalf("secrets: users %v, edges %v", rot.Secrets.Users(), rot.Secrets.Edges())
	}
	kp, err := nkeys.FromSeed([]byte(rot.Secrets.EdgeSeeds[id].Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := kp.PublicKey()
	k := rot.State.EdgeKeys[id]
	if k.PublicKey != newKey || k.PreviousPublicKey != oldKey || newKey == oldKey {
		t.Fatalf("key %+v; new %s old %s", k, newKey, oldKey)
	}
	until := clock.Now().Add(authz.DefaultOverlap)
	if !k.PreviousUntil.Equal(until) {
		t.Errorf("PreviousUntil = %v, want %v", k.PreviousUntil, until)
	}
	before, after := until.Add(-time.Nanosecond), until
	if !k.Accepts(oldKey, before) || !k.Accepts(newKey, before) || !slices.Equal(k.PublicKeys(before), []string{newKey, oldKey}) {
		t.Errorf("inside the window: old %v, new %v, keys %v", k.Accepts(oldKey, before), k.Accepts(newKey, before), k.PublicKeys(before))
	}
	if k.Accepts(oldKey, after) || !k.Accepts(newKey, after) || !slices.Equal(k.PublicKeys(after), []string{newKey}) {
		t.Errorf("after the window: old %v, new %v, keys %v", k.Accepts(oldKey, after), k.Accepts(newKey, after), k.PublicKeys(after))
	}
	if k.Accepts("", before) {
		t.Errorf("empty key accepted")
	}
	if p := rot.State.Prune(after).EdgeKeys[id]; p.PreviousPublicKey != "" || !p.PreviousUntil.IsZero() {
		t.Errorf("after Prune: %+v", p)
	}
	// Generate with nothing new keeps the rotated key as it is.
	again := mustGenerate(t, g, loadExample(t), rot.State)
	if again.State.EdgeKeys[id] != k {
		t.Errorf("Generate changed the rotated key")
	}
}

func TestRotateUnknownIdentity(t *testing.T) {
	g := credGenerator(newCredClock())
	st := mustGenerate(t, g, loadExample(t), nil).State
	res, err := g.Rotate(context.Background(), st, "acme.hq.reader.front-in", "acme.hq.reader.nope", "acme.attic")
	if res != nil || !errors.Is(err, authz.ErrUnknownIdentity) {
		t.Fatalf("Rotate = %v, %v; want nil, ErrUnknownIdentity", res, err)
	}
	if want := `authz: unknown identity: no credential for ["acme.attic" "acme.hq.reader.nope"]`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := newCredClock()
	g := credGenerator(clock)
	g.Logger = logger
	first := mustGenerate(t, g, loadExample(t), nil)
	rot, err := g.Rotate(context.Background(), first.State, "acme.hq", "acme.hq.reader.front-in")
	if err != nil {
		t.Fatal(err)
	}

	// Everything one might carelessly do with the results.
	for _, res := range []*authz.Result{first, rot} {
		logger.Info("result", "result", res, "secrets", res.Secrets)
		logger.Info("secrets", "passwords", res.Secrets.Passwords, "seeds", res.Secrets.EdgeSeeds)
		for u, s := range res.Secrets.Passwords {
			logger.Info("one", "user", u, "password", s)
		}
		text := slog.New(slog.NewTextHandler(&logBuf, nil))
		text.Info("text", "secrets", res.Secrets, "result", *res)
		verbs := "%v %+v %#v %s %q %x %d\n" // a variable: vet rightly objects to %d on a Secret
		fmt.Fprintf(&logBuf, verbs, res, res.Secrets, res.Secrets, res.Secrets, res.Secrets.Passwords, res.Secrets.EdgeSeeds, res.Secrets.Passwords)
		data, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		logBuf.Write(data)
	}
	stateBytes := stateJSON(t, rot.State)
	out := logBuf.String()
	for _, res := range []*authz.Result{first, rot} {
		for u, s := range res.Secrets.Passwords {
			if strings.Contains(out, s.Reveal()) {
				t.Errorf("password of %s appears in logs", u)
			}
			if bytes.Contains(stateBytes, []byte(s.Reveal())) {
				t.Errorf("password of %s appears in the state", u)
			}
		}
		for id, s := range res.Secrets.EdgeSeeds {
			if strings.Contains(out, s.Reveal()) {
				t.Errorf("seed of %s appears in logs", id)
			}
			if bytes.Contains(stateBytes, []byte(s.Reveal())) {
				t.Errorf("seed of %s appears in the state", id)
			}
		}
	}
	if !strings.Contains(out, "acme.hq.reader.front-in") || !strings.Contains(out, "[REDACTED]") {
		t.Errorf("logs lack the names or the redaction marks:\n%s", out)
	}
}

func TestPasswordEntropyAndUniqueness(t *testing.T) {
	inv := &authz.Inventory{Orgs: []authz.Org{{Code: "acme"}}, Edges: []authz.Edge{{Org: "acme", Code: "hq"}}}
	for i := range 500 {
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: fmt.Sprintf("s%d", i)}})
	}
	res := mustGenerate(t, credGenerator(newCredClock()), inv, nil)
	seen := make(map[string]bool)
	for u, s := range res.Secrets.Passwords {
		pw := s.Reveal()
		raw, err := base64.RawURLEncoding.DecodeString(pw)
		if err != nil {
			t.Fatalf("%s: password is not base64url: %v", u, err)
		}
		if len(raw)*8 < 128 || len(pw) < 22 {
			t.Fatalf("%s: %d bits in %d characters, want at least 128 bits", u, len(raw)*8, len(pw))
		}
		if seen[pw] {
			t.Fatalf("password repeated")
		}
		seen[pw] = true
	}
	if len(seen) != 501 {
		t.Errorf("%d passwords, want 501", len(seen))
	}
	hashes := make(map[string]bool)
	for _, c := range res.State.Passwords {
		hashes[c.Hash] = true
	}
	if len(hashes) != 501 {
		t.Errorf("%d distinct hashes, want 501 (salted)", len(hashes))
	}
}
