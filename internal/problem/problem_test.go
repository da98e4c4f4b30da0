package problem

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWrite: the status, the media type, no caching, the caller's headers
// kept and the body as JSON.
func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Retry-After", "3")
	Write(w, http.StatusTooManyRequests, struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
	}{"rate limited", http.StatusTooManyRequests})
	h := w.Result().Header
	if w.Code != http.StatusTooManyRequests || h.Get("Content-Type") != ContentType || h.Get("Cache-Control") != "no-store" || h.Get("Retry-After") != "3" {
		t.Fatalf("%d %v", w.Code, h)
	}
	if got, want := w.Body.String(), `{"title":"rate limited","status":429}`+"\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}
