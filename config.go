package fillcast

import (
	"errors"
	"fmt"
)

// ConfigError is a configuration field that is missing or wrong. Every
// package's Config.Validate reports its problems this way, naming the
// field by its path in the Config the constructor was given ("RaftAddr",
// "Cache.Dir"); libraries know nothing of command lines, and cmd/fillcast
// names the flag that sets the field instead.
type ConfigError struct {
	// Pkg is the package that refused the configuration.
	Pkg string
	// Field is the field's path, outermost first, joined by dots.
	Field string
	// Problem says what is wrong and what to give instead.
	Problem string
}

func (e *ConfigError) Error() string {
	return e.Pkg + ": config " + e.Field + ": " + e.Problem
}

// ConfigErrorf returns a *ConfigError for field of pkg's Config.
func ConfigErrorf(pkg, field, format string, args ...any) error {
	return &ConfigError{Pkg: pkg, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// InField returns err with parent prefixed to the field path of the
// *ConfigError it holds: how a Config that holds another one reports the
// nested one's problems. Other errors are returned as they are.
func InField(parent string, err error) error {
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	out := *ce
	out.Field = parent + "." + ce.Field
	return &out
}
