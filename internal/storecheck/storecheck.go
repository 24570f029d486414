// Package storecheck is what the stores' contract suites
// (accounts/storetest, billing/storetest) and the tests of the stores
// themselves check with: records compared as a store gives them back,
// whatever location its times are in, and races of goroutines let go at
// once, counting the winners.
package storecheck

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// Same compares records, their times taken in UTC (InUTC), and fails t,
// naming what, if they differ.
func Same[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	got, want = InUTC(got), InUTC(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// InUTC returns v with every time.Time in it (in structs, slices and
// pointers) in UTC, so that records equal whatever location a store
// returns them in, and with empty slices nil, since nil and empty lists
// are the same answer. What v points to or holds in slices is copied, not
// changed: the store may share it.
func InUTC[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	utcValue(rv)
	return v
}

var timeType = reflect.TypeFor[time.Time]()

func utcValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
	case v.Kind() == reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() {
				utcValue(v.Field(i))
			}
		}
	case v.Kind() == reflect.Pointer && !v.IsNil():
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(v.Elem())
		v.Set(c)
		utcValue(c.Elem())
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		v.Set(c)
		for i := 0; i < v.Len(); i++ {
			utcValue(v.Index(i))
		}
	}
}

// Race calls fn(0) … fn(n-1) from n goroutines let go at once, and
// returns how many succeeded; an error other than lose (the one the
// losers of the race must get) fails t, named by what.
func Race(t testing.TB, what string, n int, lose error, fn func(i int) error) int {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lose):
			t.Errorf("%s: got %v, want nil or %v", what, err, lose)
		}
	}
	return won
}

// OK fails t now if err is not nil, naming what returned it.
func OK(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// WantErr fails t if err does not wrap want, naming what returned it.
func WantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}
