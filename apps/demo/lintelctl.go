package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
)

// Files of the operator's lintelctl context, in the directory
// contextDir of the demo's temporary directory; the context names the
// others relative to itself.
const (
	contextDir      = "lintelctl"
	contextFile     = "context.json"
	passwordFile    = "ops.password"
	commandSeedFile = "command-" + org + ".seed"
	hashKeyFile     = "hash-" + org + ".key"
	inventoryFile   = "inventory.json"
	// contextTokenFile is a copy of the API's admin token: with it (and
	// the API's URL) lintelctl goes through central's API.
	contextTokenFile = "api.token"
)

// operatorUser is the operator's NATS user name.
var operatorUser = authz.ServiceUser(org, operatorName)

// writeContext writes the operator's lintelctl context under dir, with its
// password, the org's command key and hash key, the inventory and a copy
// of the API's admin token beside it (each mode 0600), and returns its
// path. The context names central's API (api_url, api_token_file), so
// lintelctl's live commands go through it; the NATS settings stay for the
// nats CLI and for a context without the API.
func (l *live) writeContext(dir string) (string, error) {
	d := filepath.Join(dir, contextDir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("lintelctl context: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d, passwordFile), []byte(l.password(operatorUser)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("lintelctl context: %w", err)
	}
	if err := authz.WriteSeedFile(filepath.Join(d, commandSeedFile), l.secrets.CommandSeeds[org]); err != nil {
		return "", fmt.Errorf("lintelctl context: command key: %w", err)
	}
	if err := access.WriteHashKey(filepath.Join(d, hashKeyFile), l.key); err != nil {
		return "", fmt.Errorf("lintelctl context: hash key: %w", err)
	}
	inv, err := json.MarshalIndent(l.inv, "", "  ")
	if err != nil {
		return "", fmt.Errorf("lintelctl context: inventory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d, inventoryFile), append(inv, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("lintelctl context: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d, contextTokenFile), []byte(l.apiToken+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("lintelctl context: API token: %w", err)
	}
	path := filepath.Join(d, contextFile)
	if err := config.WriteContext(path, &config.Context{
		Servers:         []string{l.central.ClientURL()},
		Org:             org,
		User:            operatorUser,
		PasswordFile:    passwordFile,
		CommandSeedFile: commandSeedFile,
		HashKeyFile:     hashKeyFile,
		InventoryFile:   inventoryFile,
		DatabaseURL:     l.hist.url,
		APIURL:          l.apiURL,
		APITokenFile:    contextTokenFile,
	}); err != nil {
		return "", fmt.Errorf("lintelctl context: %w", err)
	}
	return path, nil
}
