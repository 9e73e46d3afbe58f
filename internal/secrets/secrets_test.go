package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/secrets"
)

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	box, err := secrets.Open("", dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, secrets.KeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	sealed, err := box.Seal("retailcrm.api_key", "k-123")
	if err != nil || !secrets.IsSealed(sealed) || strings.Contains(sealed, "k-123") {
		t.Fatalf("sealed %q %v", sealed, err)
	}
	again, _ := box.Seal("retailcrm.api_key", "k-123")
	if again == sealed {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	// The same directory gives the same key.
	box2, err := secrets.Open("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := box2.Opened("retailcrm.api_key", sealed); err != nil || plain != "k-123" {
		t.Fatalf("opened %q %v", plain, err)
	}
	// Another purpose, another key, a damaged value: ErrOpen.
	if _, err := box2.Opened("webhooks.secret", sealed); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("other purpose: %v", err)
	}
	other, _ := secrets.Open("", t.TempDir())
	if _, err := other.Opened("retailcrm.api_key", sealed); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("other key: %v", err)
	}
	if _, err := box.Opened("retailcrm.api_key", sealed[:len(sealed)-2]+"AA"); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("damaged: %v", err)
	}
	if _, err := box.Opened("retailcrm.api_key", "plain text"); err == nil {
		t.Error("a plain value opened")
	}
	if s, _ := box.Seal("x", ""); s != "" {
		t.Errorf("empty sealed as %q", s)
	}
}

func TestKeyFromEnvironment(t *testing.T) {
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	a, err := secrets.Open(key, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := secrets.Open(key, t.TempDir())
	s, _ := a.Seal("p", "v")
	if v, err := b.Opened("p", s); err != nil || v != "v" {
		t.Errorf("the same key in two places: %q %v", v, err)
	}
	for _, bad := range []string{"short", "c2hvcnQ=", "!!!"} {
		if _, err := secrets.Open(bad, ""); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}
