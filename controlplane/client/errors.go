package client

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrUnavailable is wrapped by the error of a call that every known node
// failed (see the package doc for what counts as a failure).
var ErrUnavailable = errors.New("client: no control-plane node answered")

// Error is a node's answer with a status the call does not take: not
// 2xx, and from Manifest not 304 either. Branch on it with errors.As, or
// on its status with StatusCode.
type Error struct {
	// Method and URL are the request (the node's base URL and the path).
	Method, URL string
	// Status is the HTTP status.
	Status int
	// Message is the "error" field of the body the control plane sends
	// with every error, or the start of the body when it is not that.
	Message string
}

// Error returns the request, the status and the server's message.
func (e *Error) Error() string {
	return fmt.Sprintf("client: %s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// StatusCode returns the status of the last node's answer in err's
// chain: the *Error's status when one node answered, and when every node
// failed (ErrUnavailable) the status of the last node that answered at
// all (a 503, say). It returns 0 when no node answered: nil, a call whose
// connections all failed or timed out, or an error of the caller's.
func StatusCode(err error) int {
	if e := lastError(err); e != nil {
		return e.Status
	}
	return 0
}

// lastError returns the last *Error in err's tree, depth first as
// errors.As walks it but from the end.
func lastError(err error) *Error {
	for err != nil {
		switch x := err.(type) {
		case *Error:
			return x
		case interface{ Unwrap() []error }:
			errs := x.Unwrap()
			for i := len(errs) - 1; i >= 0; i-- {
				if e := lastError(errs[i]); e != nil {
					return e
				}
			}
			return nil
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
