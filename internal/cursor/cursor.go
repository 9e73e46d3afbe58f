// Package cursor makes the opaque page cursors of the list APIs: the sort
// key of a page's last row — a time and an id — in URL-safe base64, so that
// clients pass it back as it is and the next page starts after that row.
package cursor

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrBad means a cursor this API did not issue.
var ErrBad = errors.New("cursor is not one this API returned")

// Encode makes the cursor of the row (at, id).
func Encode(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

// Decode reads a cursor back; ErrBad when it is not one Encode made.
func Decode(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBad
	}
	micros, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", ErrBad
	}
	return time.UnixMicro(n).UTC(), id, nil
}
