package fillcast

import (
	"errors"
	"fmt"
	"testing"
)

func TestConfigError(t *testing.T) {
	t.Parallel()
	err := ConfigErrorf("cache", "Dir", "required: the directory of the disk tier")
	if got, want := err.Error(), "cache: config Dir: required: the directory of the disk tier"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	nested := InField("Appliance", InField("Cache", fmt.Errorf("wrapped: %w", err)))
	var ce *ConfigError
	if !errors.As(nested, &ce) || ce.Field != "Appliance.Cache.Dir" || ce.Pkg != "cache" {
		t.Fatalf("nested = %#v, want field Appliance.Cache.Dir of package cache", nested)
	}
	if plain := errors.New("x"); InField("A", plain) != plain {
		t.Error("InField changed an error that holds no ConfigError")
	}
}
