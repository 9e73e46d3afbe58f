package retailcrm

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Error classes (spec §4.2). Every error the Client returns for an answer of
// the API is an *APIError whose Class is one of these, so callers test
// errors.Is(err, retailcrm.ErrInvalidKey) and show the class's text — it
// says what to fix.
var (
	ErrMissingKey       = errors.New("the API key is missing")
	ErrInvalidKey       = errors.New("the API key is wrong: copy it again from RetailCRM, Administration → Integration → API access keys")
	ErrAccessDenied     = errors.New("the API key has no access to this method or store: allow it in the key's settings in RetailCRM")
	ErrAccountNotFound  = errors.New("the RetailCRM account does not exist: check the account URL")
	ErrNotFound         = errors.New("not found")
	ErrValidation       = errors.New("RetailCRM rejected the data")
	ErrMissingParameter = errors.New("a required parameter is missing (a bug in Throughline)")
	ErrRateLimited      = errors.New("RetailCRM is limiting the request rate; will retry later")
	ErrUnavailable      = errors.New("RetailCRM could not be reached or answered with a server error; will retry later")
	ErrBadResponse      = errors.New("RetailCRM answered with something that is not its API's JSON: check the account URL")
	ErrAPI              = errors.New("RetailCRM answered with an error")
)

// APIError is a failed request: what RetailCRM answered, or why there was no
// usable answer.
type APIError struct {
	Endpoint   string     // "GET /api/v5/orders": where it came from (never the key)
	HTTPStatus int        // 0 when no answer arrived
	Message    string     // errorMsg, or a description of the failure
	Errors     FlexErrors // field → message, for validation errors
	Class      error      // one of the Err… classes above
	Attempts   int        // requests made, retries included
	// MaybeApplied is set when a request that changes data (a create) failed
	// in a way that does not say whether it was applied: a timeout or a 5xx.
	// Look the entity up before trying again (spec §10.6).
	MaybeApplied bool
	Err          error // the underlying network error, if any
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("retailcrm ")
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.HTTPStatus)
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg == "" && e.Class != nil {
		msg = e.Class.Error()
	}
	b.WriteString(msg)
	if len(e.Errors) > 0 {
		keys := make([]string, 0, len(e.Errors))
		for k := range e.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(e.Errors[k])
		}
		b.WriteString(")")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " [after %d attempts]", e.Attempts)
	}
	return b.String()
}

// Unwrap makes errors.Is work with the class and with the network error.
func (e *APIError) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Class != nil {
		out = append(out, e.Class)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Retryable reports whether trying the same request later may succeed:
// rate limiting, server errors and network failures.
func Retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

var missingParameter = regexp.MustCompile(`^Parameter '([\w\]\[_\-]+)'( in '[\w\]\[_\-]+')? is missing\.?$`)

// classify picks the class of a JSON error answer: by errorMsg first (the
// exact texts of spec §4.2), then by HTTP status (§4.3).
func classify(status int, msg string) error {
	switch msg {
	case `"apiKey" is missing.`:
		return ErrMissingKey
	case `Wrong "apiKey" value.`:
		return ErrInvalidKey
	case "Access denied.":
		return ErrAccessDenied
	case "Account does not exist.":
		return ErrAccountNotFound
	case "Errors in the entity format", "Validation error":
		return ErrValidation
	case "Not found":
		return ErrNotFound
	}
	if missingParameter.MatchString(msg) {
		return ErrMissingParameter
	}
	switch {
	case status == 429 || status == 503:
		return ErrRateLimited
	case status >= 500:
		return ErrUnavailable
	case status == 400:
		return ErrValidation
	case status == 401:
		return ErrInvalidKey
	case status == 403:
		return ErrAccessDenied
	case status == 404:
		return ErrNotFound
	}
	return ErrAPI
}
