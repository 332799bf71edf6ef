package e2e

import (
	"encoding/base64"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// testDashboardMissingEndpoints answers some API routes with the query
// service's 404 for an unknown route, as a server without them would: each
// panel that needs one shows an error state and the rest of the page works.
func testDashboardMissingEndpoints(t *testing.T, env *dashEnv) {
	p := newPage(t, env)
	body := base64.StdEncoding.EncodeToString([]byte(`{"code":"route_not_found","message":"no route for this path"}`))
	chromedp.ListenTarget(p.ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		go func() {
			c := chromedp.FromContext(p.ctx)
			err := fetch.FulfillRequest(e.RequestID, 404).
				WithResponseHeaders([]*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}).
				WithBody(body).
				Do(cdp.WithExecutor(p.ctx, c.Target))
			if err != nil && p.ctx.Err() == nil {
				t.Errorf("fulfill %s: %v", e.Request.URL, err)
			}
		}()
	})
	p.run("intercept", fetch.Enable().WithPatterns([]*fetch.RequestPattern{
		{URLPattern: "*/v1/me*"}, {URLPattern: "*/v1/alerts?*"}, {URLPattern: "*/v1/webhooks*"},
	}))
	p.signIn("r1") // without /v1/me the page works out the role from /v1/overview
	p.waitJS("overview", `document.querySelectorAll('#metrics .metric').length >= 4`)
	p.goTo("/alerts")
	p.waitJS("alerts panel error, feed still there", `document.querySelector('#alerts .state.error').innerText.includes('not available on this server yet') && document.querySelector('#feed-list').innerText.includes('Usage reached 80% of quota')`)
	p.goTo("/settings")
	p.waitJS("webhooks panel error, rules still there", `document.querySelector('#webhooks .state.error').innerText.includes('not available') && document.querySelectorAll('#rules li.rule').length > 0`)
	p.screenshot("missing-endpoints")
}
