package none_test

import (
	"testing"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/cachetest"
	"github.com/sluice-gw/sluice/cachebackends/none"
)

func TestConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, _ int) cachebackends.Backend {
		b, err := none.New(none.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, cachetest.RetainsNothing())
}
