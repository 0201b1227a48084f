package lifecycle

import (
	"errors"
	"fmt"
)

// Kind is the class of a refusal; the API maps it to an HTTP status.
type Kind string

// Kinds of problems.
const (
	Invalid  Kind = "invalid"   // a bad value (400)
	NotFound Kind = "not_found" // no such object (404)
	Conflict Kind = "conflict"  // not allowed in the current state (409)
	Exists   Kind = "exists"    // the id is taken (409)
	Limit    Kind = "limit"     // a configured maximum is reached (429)
	ReadOnly Kind = "read_only" // declared in the config file (403)
)

// Problem is a refusal that names the field and the rule.
type Problem struct {
	Kind  Kind
	Field string // JSON path such as "outputs[0].url"; may be ""
	Msg   string
}

func (p *Problem) Error() string {
	if p.Field == "" {
		return p.Msg
	}
	return p.Field + ": " + p.Msg
}

// Invalidf is a bad value in field.
func Invalidf(field, format string, a ...any) error {
	return &Problem{Kind: Invalid, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Conflictf is an action or edit the current state does not allow.
func Conflictf(field, format string, a ...any) error {
	return &Problem{Kind: Conflict, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Newf makes a problem of any kind.
func Newf(kind Kind, field, format string, a ...any) error {
	return &Problem{Kind: kind, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// AsProblem returns err's Problem, or one of kind Invalid wrapping err.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return &Problem{Kind: Invalid, Msg: err.Error()}
}
