package access

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/lintel-io/lintel/internal/atomicfile"
)

// HashKeySize is the size in bytes of a hash key made by [GenerateHashKey],
// and the least [WriteHashKey] and [ReadHashKey] accept.
const HashKeySize = 32

// GenerateHashKey returns a new random hash key of [HashKeySize] bytes, for
// [message.Credential.Hash]. An org makes one once and keeps it: changing it
// changes the id of every credential.
func GenerateHashKey() ([]byte, error) {
	key := make([]byte, HashKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("access: generating hash key: %w", err)
	}
	return key, nil
}

// WriteHashKey writes key to the file at path as lower-case hex and a
// newline, readable by its owner only (mode 0600). It replaces the file
// atomically: it writes a temporary file in the same directory, syncs it
// and renames it over path, so a crash leaves the old key or the new one,
// never a torn file. A key shorter than [HashKeySize] is rejected with an
// [*fs.PathError] naming path and wrapping [ErrInvalid]; other failures are
// the errors of the os package, which name the file.
func WriteHashKey(path string, key []byte) error {
	if len(key) < HashKeySize {
		return &fs.PathError{Op: "write hash key", Path: path,
			Err: fmt.Errorf("%w: key of %d bytes, want at least %d", ErrInvalid, len(key), HashKeySize)}
	}
	buf := make([]byte, hex.EncodedLen(len(key))+1)
	hex.Encode(buf, key)
	buf[len(buf)-1] = '\n'
	return atomicfile.WriteFile(path, buf, 0o600)
}

// ReadHashKey reads a hash key written by [WriteHashKey]: hex digits,
// optionally followed by white space. Content that is not hex, or a key
// shorter than [HashKeySize] bytes, is an [*fs.PathError] naming path and
// wrapping [ErrInvalid]; the error never quotes the file's content. A file
// that cannot be read is reported as the [*fs.PathError] from the os
// package.
func ReadHashKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	invalid := func(reason string) error {
		return &fs.PathError{Op: "read hash key", Path: path, Err: fmt.Errorf("%w: %s", ErrInvalid, reason)}
	}
	text := bytes.TrimRight(data, " \t\r\n")
	key := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(key, text); err != nil {
		var ie hex.InvalidByteError
		if errors.As(err, &ie) {
			return nil, invalid("not a hex-encoded key: a character other than 0-9, a-f")
		}
		return nil, invalid("not a hex-encoded key: odd number of hex digits")
	}
	if len(key) < HashKeySize {
		return nil, invalid(fmt.Sprintf("key of %d bytes, want at least %d", len(key), HashKeySize))
	}
	return key, nil
}
