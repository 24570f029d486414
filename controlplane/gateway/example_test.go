package gateway_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
)

// A recommendations route with every protection, and an admin-only write.
// The node's concurrency limit is adaptive by default; recommendations are
// shed from 84.7 % of it.
func ExampleGateway_Handle() {
	cfg := gateway.DefaultConfig()
	g, err := gateway.New(cfg, gateway.Deps{
		// Every route declares who may call it; the authenticator says who
		// is calling.
		Authenticator: gateway.AuthenticatorFunc(func(r *http.Request) (auth.Principal, error) {
			switch auth.Bearer(r.Header.Get("Authorization")) {
			case "":
				return auth.Principal{}, nil
			case "s3cret":
				return auth.Principal{Kind: auth.Operator, ID: "k1", Scope: auth.ScopeAdmin}, nil
			}
			return auth.Principal{}, errors.New("unknown key")
		}),
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		panic(err)
	}

	popular := func(w http.ResponseWriter, r *http.Request, cause error) error {
		return gateway.WriteJSON(w, http.StatusOK, map[string]any{"results": []string{"t1", "t2"}, "fallback": true})
	}
	err = g.Handle("GET /v1/recommendations", gateway.RouteOptions{
		Name:          "recommendations",
		Policy:        auth.Public,
		Priority:      gateway.PriorityRecs,                                     // shed before browsing and playback
		Timeout:       200 * time.Millisecond,                                   // 504 or fallback after this
		MaxConcurrent: 64,                                                       // bulkhead
		Breaker:       &protect.BreakerConfig{MinRequests: 20, ErrorRatio: 0.5}, // rolling 10 s window
		Fallback:      popular,
	}, func(w http.ResponseWriter, r *http.Request) error {
		return errors.New("recs: model not loaded") // a 5xx failure: the fallback answers
	})
	if err != nil {
		panic(err)
	}

	type site struct {
		ID     string `json:"id"`
		Region string `json:"region"`
	}
	err = g.Handle("PUT /v1/sites/{id}", gateway.RouteOptions{Name: "put_site", Policy: auth.AdminOnly, MaxBodyBytes: 64 << 10},
		func(w http.ResponseWriter, r *http.Request) error {
			var s site
			if err := gateway.DecodeJSON(r, &s); err != nil {
				return err // 400 naming the field, 413, 415
			}
			if s.ID != r.PathValue("id") {
				return gateway.Errorf(http.StatusBadRequest, "id %q in the body does not match %q in the path", s.ID, r.PathValue("id"))
			}
			return gateway.WriteJSON(w, http.StatusOK, s)
		})
	if err != nil {
		panic(err)
	}

	srv := httptest.NewServer(g)
	defer srv.Close()
	show := func(req *http.Request) {
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/recommendations?user=u1", nil)
	show(req)
	req, _ = http.NewRequest("PUT", srv.URL+"/v1/sites/isp1", nil)
	req.Header.Set("X-Request-Id", "doc-1")
	show(req)
	req, _ = http.NewRequest("PUT", srv.URL+"/v1/sites/isp1", strings.NewReader(`{"id":"isp1","regoin":"eu"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("X-Request-Id", "doc-2")
	show(req)
	// Output:
	// 200 {"fallback":true,"results":["t1","t2"]}
	// 401 {"error":"unauthorized: send Authorization: Bearer <key>","request_id":"doc-1"}
	// 400 {"error":"unknown field \"regoin\": check the spelling (fields are snake_case)","request_id":"doc-2"}
}
