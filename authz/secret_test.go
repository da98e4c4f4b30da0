package authz_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
)

func TestSecretRedacts(t *testing.T) {
	const clear = "s3cr3t-Value_xyz"
	s := authz.NewSecret(clear)
	if s.Reveal() != clear || s.IsZero() {
		t.Fatalf("Reveal() = %q, IsZero() = %v", s.Reveal(), s.IsZero())
	}

	type holder struct {
		Public  authz.Secret
		private authz.Secret
		Ptr     *authz.Secret
	}
	h := holder{Public: s, private: s, Ptr: &s}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h), fmt.Sprintf(verb, []authz.Secret{s}))
	}
	out = append(out, fmt.Sprint(s), fmt.Sprintln(s, h), s.String(), s.GoString())

	var buf bytes.Buffer
	for _, hd := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(hd)
		l.Info("m", "secret", s, "holder", h, "map", map[string]authz.Secret{"u": s})
		l.Info("m", slog.Any("secret", s), slog.String("str", s.String()))
	}
	out = append(out, buf.String())
	for _, v := range []any{s, h, map[string]authz.Secret{"u": s}, authz.Secrets{Passwords: map[string]authz.Secret{"u": s}}} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	text, _ := s.MarshalText()
	out = append(out, string(text))

	all := strings.Join(out, "\n")
	if strings.Contains(all, clear) || strings.Contains(all, fmt.Sprintf("%x", clear)) {
		t.Errorf("secret leaked:\n%s", all)
	}
	if !strings.Contains(all, "[REDACTED]") {
		t.Errorf("no redaction mark:\n%s", all)
	}
}

func TestSecretZero(t *testing.T) {
	var s authz.Secret
	if !s.IsZero() || s.Reveal() != "" || s.String() != "[REDACTED]" {
		t.Errorf("zero Secret: IsZero %v, Reveal %q, String %q", s.IsZero(), s.Reveal(), s.String())
	}
	if !authz.NewSecret("").IsZero() {
		t.Errorf("empty Secret is not zero")
	}
}

func TestSecretsLogValue(t *testing.T) {
	secrets := &authz.Secrets{
		Passwords: map[string]authz.Secret{"b.user": authz.NewSecret("pw-b"), "a.user": authz.NewSecret("pw-a")},
		EdgeSeeds: map[string]authz.Secret{"acme.hq": authz.NewSecret("SUseed")},
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})).Info("generated", "secrets", secrets)
	want := `{"level":"INFO","msg":"generated","secrets":{"users":["a.user","b.user"],"edges":["acme.hq"]}}` + "\n"
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant\n%s", buf.String(), want)
	}
	var nilSecrets *authz.Secrets
	if nilSecrets.Len() != 0 || nilSecrets.Users() != nil || nilSecrets.Edges() != nil {
		t.Errorf("nil Secrets not empty")
	}
}
