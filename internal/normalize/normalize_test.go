package normalize

import (
	"errors"
	"testing"
)

func TestPhone(t *testing.T) {
	good := []struct{ in, want string }{
		{"79995551111", "79995551111"},
		{"+7 (999) 555-11-11", "79995551111"},
		{"8 (999) 555-11-11", "79995551111"},
		{"89995551111", "79995551111"},
		{"8-999-555-11-11", "79995551111"},
		{"(999) 555-11-11", "79995551111"},
		{"9995551111", "79995551111"},
		{"  +7 999 555 11 11 ", "79995551111"},
		{"+7 (495) 123-45-67", "74951234567"},
		{"8 495 123 45 67", "74951234567"},
		{"+380 44 123 4567", "380441234567"},
		{"380441234567", "380441234567"},
		{"+1 (650) 253-0000", "16502530000"},
		{"77011234567", "77011234567"}, // Kazakhstan shares +7
	}
	for _, c := range good {
		got, err := Phone(c.in, "")
		if err != nil || got != c.want {
			t.Errorf("Phone(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "abc", "123", "+7", "5551111", "mail@yandex.ru", "++79995551111999999999999999", "8\xff9995551111"} {
		if got, err := Phone(in, ""); !errors.Is(err, ErrNotPhone) {
			t.Errorf("Phone(%q) = %q, %v; want ErrNotPhone", in, got, err)
		}
	}
}

func TestEmail(t *testing.T) {
	for in, want := range map[string]string{
		"mail@yandex.ru":        "mail@yandex.ru",
		" Mail@Yandex.RU ":      "mail@yandex.ru",
		"ivan.petrov+shop@x.io": "ivan.petrov+shop@x.io",
	} {
		if got, err := Email(in); err != nil || got != want {
			t.Errorf("Email(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mail", "@yandex.ru", "mail@", "mail@yandex", "a@b@c.ru", "a b@c.ru", "a@c.ru.", "a@x.ru,b@x.ru"} {
		if got, err := Email(in); !errors.Is(err, ErrNotEmail) {
			t.Errorf("Email(%q) = %q, %v; want ErrNotEmail", in, got, err)
		}
	}
}

// The official vectors from Metrica's hashing page, and the negative checks
// showing why values are normalised before hashing.
func TestMD5(t *testing.T) {
	for in, want := range map[string]string{
		"mail@yandex.ru": "3c56ff8fef0f6c65b36b2d25720fe276",
		"79995551111":    "f09f2c3d48f31e2a802944ade2e5aec5",
		"+79995551111":   "ad213a35b7742698d9b368b16bed84b4",
		"Mail@yandex.ru": "7437ae64bcfa33bb20cd056630a97a08",
	} {
		if got := MD5(in); got != want {
			t.Errorf("MD5(%q) = %s, want %s", in, got, want)
		}
	}
	p, _ := Phone("8 (999) 555-11-11", "")
	e, _ := Email("Mail@Yandex.ru")
	if MD5(p) != "f09f2c3d48f31e2a802944ade2e5aec5" || MD5(e) != "3c56ff8fef0f6c65b36b2d25720fe276" {
		t.Errorf("normalised then hashed: %s %s", MD5(p), MD5(e))
	}
}

func TestHash(t *testing.T) {
	if got, err := Hash(" 3C56FF8FEF0F6C65B36B2D25720FE276 "); err != nil || got != "3c56ff8fef0f6c65b36b2d25720fe276" {
		t.Errorf("upper-case hash: %q %v", got, err)
	}
	for _, in := range []string{"", "3c56ff8fef0f6c65b36b2d25720fe27", "3c56ff8fef0f6c65b36b2d25720fe2766", "zc56ff8fef0f6c65b36b2d25720fe276"} {
		if _, err := Hash(in); !errors.Is(err, ErrNotMD5) {
			t.Errorf("Hash(%q): %v, want ErrNotMD5", in, err)
		}
	}
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{"79995551111", "+7 (999) 555-11-11", "8 999", "+", "380441234567", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Phone(s, "")
		if err != nil {
			return
		}
		// A normalised phone is all digits: E.164 without the "+". Read as
		// international it is itself again; so is the bare form of 11 digits
		// or more. (Bare digits shorter than that are read as a number of the
		// default region — "9995551111" is Moscow's 79995551111 — and so is
		// 8 and ten digits, Russia's trunk prefix: a short foreign number, or
		// one of the +800 freephone range, must keep its "+" to survive a
		// second pass.)
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				t.Fatalf("Phone(%q) = %q: not digits", s, p)
			}
		}
		if again, err := Phone("+"+p, ""); err != nil || again != p {
			t.Fatalf("Phone(%q) = %q, but Phone(%q) = %q, %v", s, p, "+"+p, again, err)
		}
		if len(p) < 11 || p[0] == '8' {
			return
		}
		if again, err := Phone(p, ""); err != nil || again != p {
			t.Fatalf("Phone(%q) = %q, but Phone(%q) = %q, %v", s, p, p, again, err)
		}
	})
}

func BenchmarkPhone(b *testing.B) {
	for _, in := range []string{"79995551111", "+7 (999) 555-11-11"} {
		b.Run(in, func(b *testing.B) {
			for b.Loop() {
				if _, err := Phone(in, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
