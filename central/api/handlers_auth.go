package api

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

func (s *Server) login(c *call) (any, error) {
	if err := s.handleLogin(c.w, c.r); err != nil {
		return nil, err
	}
	c.raw = true
	return nil, nil
}

func (s *Server) loginCallback(c *call) (any, error) {
	if err := s.handleCallback(c.w, c.r); err != nil {
		return nil, err
	}
	c.raw = true
	return nil, nil
}

func (s *Server) logout(c *call) (any, error) {
	c.raw = true
	return nil, s.handleLogout(c.w, c.r)
}

func (s *Server) getMe(c *call) (any, error) { return c.p, nil }

func (s *Server) listTokens(c *call) (any, error) {
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	ts, err := s.tokens.list(ctx)
	if ts == nil {
		ts = []*Token{}
	}
	return ts, err
}

// tokenCreated is the answer to createToken: the token, shown this once.
type tokenCreated struct {
	*Token
	Secret string `json:"token"`
}

func (s *Server) createToken(c *call) (any, error) {
	var req struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 128 || !utf8.ValidString(req.Name) || strings.ContainsFunc(req.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, invalid("name", "want a name of 1 to 128 printable characters")
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		return nil, invalid("role", "%v", err)
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	t, token, err := s.tokens.create(ctx, req.Name, role, c.p.who())
	if err != nil {
		return nil, err
	}
	c.status = http.StatusCreated
	c.change = &change{object: "API token " + t.ID, after: t}
	return tokenCreated{Token: t, Secret: token}, nil
}

func (s *Server) revokeToken(c *call) (any, error) {
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before, after, err := s.tokens.revoke(ctx, c.r.PathValue("id"), c.p.who())
	if err != nil {
		return nil, err
	}
	c.change = &change{object: "API token " + after.ID, before: before, after: after}
	return after, nil
}

func (s *Server) listAuditLog(c *call) (any, error) {
	limit, err := limitOf(c.r)
	if err != nil {
		return nil, err
	}
	var before uint64
	if v := c.r.URL.Query().Get("cursor"); v != "" {
		if before, err = parseSeq(v); err != nil {
			return nil, err
		}
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	items, next, err := s.oplog.page(ctx, before, limit)
	if err != nil {
		return nil, err
	}
	return page[AuditEntry]{Items: items, Next: next}, nil
}
