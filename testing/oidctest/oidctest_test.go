package oidctest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lintel-io/lintel/testing/oidctest"
)

// TestProviderVerifiedByGoOIDC: go-oidc discovers the provider, verifies a
// minted token with the JWKS, and refuses a forged, an expired and a
// foreign-audience token.
func TestProviderVerifiedByGoOIDC(t *testing.T) {
	p := oidctest.New(t, oidctest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prov, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	v := prov.Verifier(&oidc.Config{ClientID: p.ClientID()})
	tok, err := v.Verify(ctx, p.Token(t, "alice", "operator"))
	if err != nil {
		t.Fatalf("verify a minted token: %v", err)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := tok.Claims(&claims); err != nil || tok.Subject != "alice" || len(claims.Roles) != 1 || claims.Roles[0] != "operator" {
		t.Fatalf("claims: %v %q %v", err, tok.Subject, claims.Roles)
	}
	bad := map[string]func() (string, error){
		"forged": func() (string, error) { return p.Forge(p.Claims("alice", "admin")) },
		"expired": func() (string, error) {
			c := p.Claims("alice", "admin")
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return p.Sign(c)
		},
		"audience": func() (string, error) {
			c := p.Claims("alice", "admin")
			c["aud"] = "another-client"
			return p.Sign(c)
		},
	}
	for name, mk := range bad {
		s, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ctx, s); err == nil {
			t.Errorf("%s token verified", name)
		}
	}
}

// TestAuthorizationCodeFlow: the authorization endpoint approves the
// configured user and the code exchanges once for an ID token carrying
// the nonce.
func TestAuthorizationCodeFlow(t *testing.T) {
	p := oidctest.New(t, oidctest.Config{})
	p.SetUser(oidctest.User{Subject: "bob", Email: "bob@example.com", Roles: []string{"admin"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prov, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("state") == "st" {
			codes <- r.URL.Query().Get("code")
		}
	}))
	defer cb.Close()
	oc := oauth2.Config{ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), Endpoint: prov.Endpoint(),
		RedirectURL: cb.URL + "/cb", Scopes: []string{oidc.ScopeOpenID}}
	resp, err := http.Get(oc.AuthCodeURL("st", oidc.Nonce("n1")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code := <-codes
	tok, err := oc.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := prov.Verifier(&oidc.Config{ClientID: p.ClientID()}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "bob" || id.Nonce != "n1" {
		t.Fatalf("subject %q nonce %q", id.Subject, id.Nonce)
	}
	if _, err := oc.Exchange(ctx, code); err == nil {
		t.Fatal("a code exchanged twice")
	}
}
