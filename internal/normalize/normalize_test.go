package normalize

import (
	"errors"
	"strings"
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

// quickRU must give what libphonenumber gives, for every region.
func TestQuickRU(t *testing.T) {
	for _, in := range []string{"79995551111", "+79995551111", "+7 (999) 555-11-11", "8 (999) 555-11-11", "89995551111",
		"8-999-555-11-11", "7 999 555 11 11", "+7 (495) 123-45-67", "8 495 123 45 67", "+7 343 123-45-67",
		"87011234567", "+77011234567", "88001234567", "+7 (800) 123-45-67", "8 (999) 555-11-11)", "+7 999 555 11 11 ",
		"+7 (599) 555-11-11", "8 (699) 555-11-11", "+8 999 555 11 11", "+ 7 999 555 11 11", "(8) 999 555 11 11",
		"+7 999 555 11 111", "8 999 555 11 1", "7-9995551111"} {
		for _, region := range []string{"RU", "UA", "KZ", "US"} {
			got, ok := quickRU(strings.TrimSpace(in), region)
			if !ok {
				continue
			}
			if want, err := parsePhone(strings.TrimSpace(in), region); err != nil || got != want {
				t.Errorf("quickRU(%q, %s) = %q; libphonenumber: %q, %v", in, region, got, want, err)
			}
		}
	}
	for _, in := range []string{"+7 (999) 555-11-11", "8 (999) 555-11-11", "89995551111", "+79995551111"} {
		if _, ok := quickRU(in, "RU"); !ok {
			t.Errorf("quickRU(%q) does not read it", in)
		}
	}
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{"79995551111", "+7 (999) 555-11-11", "8 999", "+", "380441234567", "\x00",
		"8 (999) 555-11-11", "+7 (495) 123-45-67)", "8-800-123-45-67"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The quick path agrees with libphonenumber.
		for _, region := range []string{"RU", "UA"} {
			if got, ok := quickRU(strings.TrimSpace(s), region); ok {
				if want, err := parsePhone(strings.TrimSpace(s), region); err != nil || got != want {
					t.Fatalf("quickRU(%q, %s) = %q; libphonenumber: %q, %v", s, region, got, want, err)
				}
			}
		}
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
	for _, in := range []string{"79995551111", "+7 (999) 555-11-11", "+380 44 123 4567"} {
		b.Run(in, func(b *testing.B) {
			for b.Loop() {
				if _, err := Phone(in, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
