package recs_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/recs"
)

func TestPopularTopsUpFromCatalog(t *testing.T) {
	t.Parallel()
	// Trending, once refreshed: hot (3 views), then warm (1); too few
	// views for a model.
	views := []events.Interaction{
		{User: "a", Title: "hot", Weight: 1, Last: start},
		{User: "b", Title: "hot", Weight: 1, Last: start},
		{User: "c", Title: "hot", Weight: 1, Last: start},
		{User: "a", Title: "warm", Weight: 1, Last: start},
	}
	tests := []struct {
		name     string
		trending bool // refresh the trending list first
		catalog  []string
		finished []string
		limit    int
		want     []string
	}{
		{"nothing at all", false, nil, nil, 5, []string{}},
		{"catalog answers a new service", false, []string{"n1", "n2", "n3"}, nil, 2, []string{"n1", "n2"}},
		{"trending first, then the catalog", true, []string{"n1", "hot", "n2"}, nil, 4, []string{"hot", "warm", "n1", "n2"}},
		{"trending enough", true, []string{"n1"}, nil, 2, []string{"hot", "warm"}},
		{"finished titles left out", true, []string{"n1", "n2", "n3"}, []string{"warm", "n2"}, 3, []string{"hot", "n1", "n3"}},
		{"duplicates listed once", true, []string{"n1", "n1", "warm", "", "n2"}, nil, 10, []string{"hot", "warm", "n1", "n2"}},
		{"no catalog", true, nil, nil, 5, []string{"hot", "warm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{data: views, finished: map[string][]string{"viewer": tt.finished}}
			deps := recs.Deps{Source: src, Finished: src}
			if tt.catalog != nil {
				deps.Catalog = func() []string { return tt.catalog }
			}
			s := newServiceDeps(t, -1, deps)
			ctx := context.Background()
			if tt.trending {
				if err := s.Retrain(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := ids(s.Fallback("viewer", tt.limit).Results); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Fallback = %v, want %v", got, tt.want)
			}
			res, err := s.Recommend(ctx, "viewer", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res.Results); res.Source != recs.SourcePopular || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Recommend = %s %v, want popular %v", res.Source, got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *recs.Config)
		ok   bool
	}{
		{"defaults", func(c *recs.Config) {}, true},
		{"zero fills", func(c *recs.Config) { *c = recs.Config{} }, true},
		{"no schedule", func(c *recs.Config) { c.Interval = -1 }, true},
		{"poll above interval is capped", func(c *recs.Config) { c.Interval, c.Poll = time.Second, time.Minute }, true},
		{"negative poll", func(c *recs.Config) { c.Poll = -time.Second }, false},
		{"default limit above max", func(c *recs.Config) { c.DefaultLimit, c.MaxLimit = 20, 10 }, false},
		{"bad ALS", func(c *recs.Config) { c.ALS.Solver = "svd" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := recs.DefaultConfig()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
