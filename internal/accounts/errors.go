package accounts

import (
	"errors"
	"fmt"
)

// Errors of this package. ErrBadCredentials says nothing about which of the
// e-mail and the password was wrong.
var (
	ErrNotFound       = errors.New("accounts: not found")
	ErrNoRole         = errors.New("accounts: no role on this counter")
	ErrBadCredentials = errors.New("accounts: wrong e-mail or password")
	ErrNoSession      = errors.New("accounts: not signed in")
	ErrLinkInvalid    = errors.New("accounts: this link is invalid, used or expired")
)

// FieldError names the input that is wrong.
type FieldError struct {
	Field, Message string
	Conflict       bool // the value is valid but clashes with what exists
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, message string) error {
	return &FieldError{Field: field, Message: message, Conflict: true}
}

func notFound(what string) error { return fmt.Errorf("%s %w", what, ErrNotFound) }
