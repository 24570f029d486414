package fsm

import (
	"fmt"
	"reflect"
)

// completeState makes a decoded snapshot's state one the FSM can run on:
// a map or the request log the snapshot gives as null is empty, and a
// null record (in a map or the rule log) is refused, since readers and
// Apply take every record as present. Persist writes neither; a snapshot
// holding them is corrupt or not one of ours.
func completeState(s *State) error {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		fv, name := v.Field(i), v.Type().Field(i).Name
		switch fv.Kind() {
		case reflect.Map:
			if fv.IsNil() {
				fv.Set(reflect.MakeMap(fv.Type()))
			}
			for it := fv.MapRange(); it.Next(); {
				if it.Value().Kind() == reflect.Pointer && it.Value().IsNil() {
					return fmt.Errorf("fsm: restore: %s %q is null", name, it.Key().String())
				}
			}
		case reflect.Slice:
			for j := range fv.Len() {
				if e := fv.Index(j); e.Kind() == reflect.Pointer && e.IsNil() {
					return fmt.Errorf("fsm: restore: %s[%d] is null", name, j)
				}
			}
		}
	}
	if s.Requests == nil {
		s.Requests = &RequestLog{}
	}
	return nil
}
