package api

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

// ConsolePath is where the console is served.
const ConsolePath = "/console/"

// consoleCSP is the console's Content-Security-Policy: its own scripts,
// styles and API only; no inline script or style, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

//go:embed console/index.html console/app.js console/app.css
var consoleFiles embed.FS

var consolePage = template.Must(template.ParseFS(consoleFiles, "console/index.html"))

// consoleData is what the console's page is rendered with.
type consoleData struct {
	Org, User, Role, LoginURL string
	TokenLogin                bool
}

// registerConsole adds the console's routes to mux: the page, its script
// and style, and "/" redirecting to the page.
func (s *Server) registerConsole(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ConsolePath, http.StatusFound)
	})
	mux.HandleFunc("GET "+ConsolePath+"{$}", s.consolePage)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for name, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"} {
		b, err := consoleFiles.ReadFile("console/" + name)
		if err != nil {
			panic(err) // embedded above
		}
		mux.HandleFunc("GET "+ConsolePath+name, func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Cache-Control", "no-cache")
			h.Set("Content-Security-Policy", consoleCSP)
			_, _ = w.Write(b)
		})
	}
}

// consolePage renders the console for the session's user, or the login
// link without a session.
func (s *Server) consolePage(w http.ResponseWriter, r *http.Request) {
	d := consoleData{Org: s.org, TokenLogin: s.cfg.TokenLogin}
	if s.loginAvailable() == nil {
		d.LoginURL = PathPrefix + "/auth/login"
	}
	if s.sessions() {
		if c, err := r.Cookie(sessionCookie); err == nil {
			ctx, cancel := s.call(r.Context())
			sess, err := s.sessionOf(ctx, c.Value)
			cancel()
			if err == nil && sess.Role > RolePublic {
				d.User, d.Role = sess.Subject, sess.Role.String()
				if sess.Name != "" {
					d.User = sess.Name
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := consolePage.Execute(&buf, d); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", consoleCSP)
	_, _ = w.Write(buf.Bytes())
}
