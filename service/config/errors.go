package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error kinds. Every *Error's Err wraps exactly one of these, so callers can
// tell problems apart with errors.Is without parsing messages.
var (
	// ErrSyntax: the file is not valid TOML (including duplicate keys and
	// redefined tables).
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownKey: a key or table that this file format does not define.
	ErrUnknownKey = errors.New("unknown key")
	// ErrType: a key holds the wrong TOML type (a string where an integer
	// is wanted, ...).
	ErrType = errors.New("wrong type")
	// ErrMissing: a required key is absent.
	ErrMissing = errors.New("missing key")
	// ErrConflict: two keys (or two files) that cannot be used together.
	ErrConflict = errors.New("conflicting keys")
	// ErrInvalid: a key of the right type whose value is not allowed.
	ErrInvalid = errors.New("invalid value")
	// ErrName: a file name that is not a valid port name.
	ErrName = errors.New("invalid port name")
	// ErrRead: the file could not be read.
	ErrRead = errors.New("cannot read file")
)

// Error is one problem in a configuration file, located as precisely as the
// package can: the file, the 1-based line and column of the offending key
// (or of its table header, or 1:1 for a key that is missing altogether) and
// the dotted key path. Its message has the form
//
//	<file>:<line>:<col>: <key>: <reason>
//
// which editors and `grep -n`-style tools understand. Parts that are unknown
// are left out: Line is 0 for a Port built in code rather than parsed, Key is
// empty for whole-file problems such as a syntax error before any key.
//
// Unlike other vsp errors the message does not start with "config: ": the
// file name already says where it comes from, and a prefix would stop
// editors from jumping to the line.
type Error struct {
	File string
	Line int
	Col  int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(max(e.Col, 1)))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Err == nil {
		b.WriteString("unknown error")
	} else {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// reason is an Err with a plain message that still matches its kind with
// errors.Is, so messages read "want 1..65535, got 0" rather than
// "invalid value: want ...".
type reason struct {
	kind error
	msg  string
}

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return r.kind }

func reasonf(kind error, format string, args ...any) error {
	return &reason{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Errors returns the individual *Error values inside err, which may be a
// single *Error or a join of them (as returned by Parse, Load, Validate and
// LoadDaemon). Other errors in the tree are skipped.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// joinErrors sorts errs by position and joins them; one error is returned
// as itself so that callers get a plain *Error in the common case.
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
