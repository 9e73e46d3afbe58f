// Package normalize turns the customer identifiers that reach Throughline —
// phones, e-mail addresses and their md5 hashes — into one canonical form
// each, so that a phone typed "8 (999) 555-11-11" in a CRM and "+7 999
// 555 11 11" in a web form are the same key. Every intake (CRM feeds and
// uploads, leads, calls) uses these functions and no other.
//
// The forms are Yandex Metrica's, so that hashes computed here equal the
// hashes Metrica-style uploaders send: a phone is its digits with the
// country code (79995551111), an e-mail is trimmed and lower-case, and an
// md5 is 32 lower-case hex digits of the normalised value.
package normalize

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the country assumed for phones written without a country
// code ("8 999 555-11-11", "(999) 555-11-11"): the shops Throughline is
// built for are mostly Russian, and their CRMs store local numbers.
const DefaultRegion = "RU"

// ErrNotPhone means the text is not a phone number that could be dialled.
var ErrNotPhone = errors.New("not a phone number")

// Phone returns the phone number as digits with its country code
// ("+7 (999) 555-11-11", "8 999 555 11 11" and "79995551111" all give
// "79995551111"). Numbers without a country code are read as numbers of
// region (DefaultRegion when empty). It fails with ErrNotPhone for text that
// is not a possible phone number.
func Phone(s, region string) (string, error) {
	s = strings.TrimSpace(s)
	if region == "" {
		region = DefaultRegion
	}
	// Most values are already canonical ("7XXXXXXXXXX" is what K50's feed
	// asks for) or a Russian number in one of its usual spellings ("+7 (999)
	// 555-11-11", "8 999 555-11-11"): those need no parsing. libphonenumber
	// takes 10–50 µs a number, which is most of a million-row import's time.
	if out, ok := quickRU(s, region); ok {
		return out, nil
	}
	return parsePhone(s, region)
}

// parsePhone is Phone through libphonenumber, for what quickRU does not
// read (s trimmed, region set).
func parsePhone(s, region string) (string, error) {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return "", ErrNotPhone
	}
	// A bare string of 11–15 digits written without "+" is the canonical
	// form of a foreign number ("380441234567"): read it as international.
	if d := digitsOnly(s); d == s && len(d) >= 11 && d[0] != '8' {
		s = "+" + s
	}
	num, err := phonenumbers.Parse(s, region)
	// Only complete numbers: a local number without its area code
	// ("555-11-11") cannot be told apart from the same digits elsewhere.
	if err != nil || phonenumbers.IsPossibleNumberWithReason(num) != phonenumbers.IS_POSSIBLE {
		return "", ErrNotPhone
	}
	// E.164 keeps a national number's leading zeros (Italy's), which the
	// number's integer form drops. Junk such as "+98000000" formats to
	// something that reads back as another number: refuse it, so that the
	// canonical form always reads back as itself.
	out := strings.TrimPrefix(phonenumbers.Format(num, phonenumbers.E164), "+")
	again, err := phonenumbers.Parse("+"+out, region)
	if err != nil || strings.TrimPrefix(phonenumbers.Format(again, phonenumbers.E164), "+") != out ||
		phonenumbers.IsPossibleNumberWithReason(again) != phonenumbers.IS_POSSIBLE {
		return "", ErrNotPhone
	}
	return out, nil
}

// quickRU reads the spellings of a Russian or Kazakh number (+7, area or
// mobile code starting 3, 4, 7, 8 or 9) that need no libphonenumber, giving
// what it would: "7" and ten digits as it is (any region); "+7" and ten
// digits; and, in region RU, "7" or the trunk prefix "8" and ten digits.
// Digits may be grouped with spaces, "-" and "(…)". ok is false for
// anything else, which is then parsed in full (TestQuickRU and FuzzPhone
// check the two agree).
func quickRU(s, region string) (string, bool) {
	if len(s) == 11 && s[0] == '7' && allDigits(s) {
		return s, ruCode(s[1])
	}
	if len(s) > 32 {
		return "", false
	}
	plus := len(s) > 0 && s[0] == '+'
	if plus {
		s = s[1:]
	} else if region != DefaultRegion {
		return "", false
	}
	var d [11]byte
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if n == len(d) {
				return "", false
			}
			d[n] = c
			n++
		case c == ' ' || c == '-' || c == '(' || c == ')':
			if n == 0 {
				return "", false // begins with a separator (after "+")
			}
		default:
			return "", false
		}
	}
	if n != len(d) || !ruCode(d[1]) || !(d[0] == '7' || d[0] == '8' && !plus) {
		return "", false
	}
	d[0] = '7'
	return string(d[:]), true
}

// ruCode reports whether c begins a Russian/Kazakh area or mobile code.
func ruCode(c byte) bool { return c == '3' || c == '4' || c == '7' || c == '8' || c == '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func digitsOnly(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ErrNotEmail means the text is not an e-mail address.
var ErrNotEmail = errors.New("not an e-mail address")

// Email returns the address trimmed and in lower case. It fails with
// ErrNotEmail unless the text has one "@" with something on both sides, a
// dot in the domain and no spaces.
func Email(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		!strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.ContainsAny(s, " ,;<>\"") || strings.ContainsFunc(s, unicode.IsControl) || len(s) > 254 || !utf8.ValidString(s) {
		return "", ErrNotEmail
	}
	return s, nil
}

// MD5 returns the md5 of a normalised value as 32 lower-case hex digits:
// MD5("mail@yandex.ru") = "3c56ff8fef0f6c65b36b2d25720fe276".
func MD5(normalised string) string {
	sum := md5.Sum([]byte(normalised))
	return hex.EncodeToString(sum[:])
}

// ErrNotMD5 means the text is not an md5 in hex.
var ErrNotMD5 = errors.New("not an md5 hash (32 hex digits)")

// Hash checks an md5 sent by a client and returns it in lower case; hashes
// arrive in either case, and only their value matters.
func Hash(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) != 32 {
		return "", ErrNotMD5
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + ('a' - 'A')
		default:
			return "", ErrNotMD5
		}
	}
	return string(b), nil
}
