// Package secrets keeps the credentials Throughline stores for users — CRM
// API keys, webhook signing secrets — encrypted at rest (design: "secrets
// encrypted at rest"), so a copy of the database alone does not give them
// away.
//
// A Box seals with AES-256-GCM under one key. The key comes from
// THROUGHLINE_SECRET_KEY (--secret-key), 32 bytes in base64; without it, from
// the file secret.key in the data directory, created on first use. Several
// serve processes on one PostgreSQL database must share the key: set it.
//
// A sealed value is "v1:" and base64 of nonce ‖ ciphertext. Each is sealed
// for a purpose (e.g. "retailcrm.api_key"), authenticated with it, so a
// value copied into another column does not open there.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the key's file name in the data directory.
const KeyFile = "secret.key"

const prefix = "v1:"

// ErrOpen is returned for a value that does not open with the box's key:
// another key, another purpose, or damaged.
var ErrOpen = errors.New("secrets: the value does not open with this key (was THROUGHLINE_SECRET_KEY changed?)")

// Box seals and opens values under one key.
type Box struct {
	aead cipher.AEAD
}

// New returns a box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secrets: the key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return &Box{aead: aead}, nil
}

// ParseKey reads a key given as base64 (standard or URL alphabet, padded or
// not).
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(text); err == nil {
			if len(key) != 32 {
				return nil, fmt.Errorf("secrets: the key is %d bytes, want 32 (openssl rand -base64 32)", len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("secrets: the key is not base64 (make one with: openssl rand -base64 32)")
}

// Open returns the box for the key text when it is given, else for the key
// file in dir, which it creates (mode 0600) when missing.
func Open(keyText, dir string) (*Box, error) {
	if keyText != "" {
		key, err := ParseKey(keyText)
		if err != nil {
			return nil, err
		}
		return New(key)
	}
	path := filepath.Join(dir, KeyFile)
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return Open("", dir) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("secrets: create the key file: %w", err)
		}
		if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets: write the key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("secrets: write the key file: %w", err)
		}
		return New(key)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: read the key file: %w", err)
	}
	key, err := ParseKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return New(key)
}

// Seal encrypts plain for purpose. The empty string stays empty (nothing to
// hide, and "not set" stays visible).
func (b *Box) Seal(purpose, plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	sealed := b.aead.Seal(nonce, nonce, []byte(plain), []byte(purpose))
	return prefix + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Opened returns the plain value of a sealed one sealed for purpose.
func (b *Box) Opened(purpose, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", fmt.Errorf("secrets: not a sealed value")
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", ErrOpen
	}
	plain, err := b.aead.Open(nil, raw[:b.aead.NonceSize()], raw[b.aead.NonceSize():], []byte(purpose))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}

// IsSealed tells a sealed value from a plain one (rows written before the
// box existed).
func IsSealed(v string) bool { return strings.HasPrefix(v, prefix) }
