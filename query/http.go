package query

import (
	"context"
	_ "embed"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tallyhq/tally/httpjson"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/web"
)

//go:embed openapi.yaml
var openAPI []byte

func (q *Query) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "tally-query",
		DisableStartupMessage: true,
		ErrorHandler:          q.errorHandler,
		JSONEncoder:           httpjson.Marshal,
		ReadTimeout:           q.cfg.RequestTimeout + 5*time.Second,
		WriteTimeout:          q.cfg.RequestTimeout + 30*time.Second,
		IdleTimeout:           2 * time.Minute,
	})
	app.Use(q.instrument)
	app.Use(compress.New())
	app.Get("/healthz", q.healthz)
	app.Get("/readyz", q.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(q.gather, promhttp.HandlerOpts{})))
	app.Get("/openapi.yaml", q.openapi)
	v1 := app.Group("/v1", q.withTimeout, q.authenticate)
	// Routes above q.scoped answer operator keys without ?reseller=.
	v1.Get("/me", q.me)
	v1.Get("/resellers", q.resellers)
	v1.Use(q.scoped)
	v1.Get("/overview", q.overview)
	v1.Get("/activity", q.activity)
	v1.Get("/organizations", q.organizations)
	v1.Get("/organizations/:id", q.organization)
	v1.Get("/usage", q.usage)
	v1.Get("/notifications", q.notifications)
	v1.Post("/notifications/read", q.markNotificationsRead)
	v1.Get("/alerts", q.alerts)
	v1.Post("/alerts/:key/acknowledge", q.acknowledgeAlert)
	v1.Get("/alert-rules", q.alertRules)
	v1.Post("/alert-rules", q.createAlertRule)
	v1.Put("/alert-rules/:rule", q.putAlertRule)
	v1.Delete("/alert-rules/:rule", q.deleteAlertRule)
	v1.Post("/alert-rules/:rule/test", q.testAlertRule)
	v1.Get("/webhooks", q.webhooks)
	v1.Post("/webhooks", q.createWebhook)
	v1.Put("/webhooks/:id", q.putWebhook)
	v1.Delete("/webhooks/:id", q.deleteWebhook)
	v1.Post("/webhooks/:id/test", q.testWebhook)
	v1.Get("/webhooks/:id/deliveries", q.webhookDeliveries)
	v1.Get("/reports/usage.csv", q.usageReport)
	v1.Get("/reports/financial.csv", q.financialReport)
	v1.Get("/reports/activity.csv", q.activityReport)
	app.Use("/v1", func(*fiber.Ctx) error { return errRouteNotFound })
	app.Use(web.Handler())
	app.Use(func(*fiber.Ctx) error { return errRouteNotFound })
	return app
}

// instrument records per-route latency; route errors go through the error
// handler first so the recorded status is the one sent.
func (q *Query) instrument(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if werr := q.errorHandler(c, err); werr != nil {
			return werr
		}
	}
	route := c.Route().Path
	if c.Response().StatusCode() == fiber.StatusNotFound && route == "/" {
		route = "unmatched"
	}
	q.metrics.observe(route, c.Response().StatusCode(), time.Since(start))
	return nil
}

func (q *Query) withTimeout(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), q.cfg.RequestTimeout)
	defer cancel()
	// Queries run at ClickHouse's default priority. A lower one for long
	// scans makes them wait at every block while any other query runs (up
	// to a second each time, fixed in ClickHouse); measured under the query
	// benchmark's load, the 13-month breakdown's p99 was 372 ms with it and
	// 208 ms without, the other routes unchanged.
	c.SetUserContext(ctx)
	return c.Next()
}

// scope is what one request may see: one reseller's data.
type scope struct {
	reseller string
	revenue  bool
	loc      *time.Location
	tz       string
	who      *principal
}

const (
	principalKey = "tally.principal"
	scopeKey     = "tally.scope"
)

// authenticate resolves the Bearer key; a reseller key naming another
// reseller in ?reseller= is refused here, on every route.
func (q *Query) authenticate(c *fiber.Ctx) error {
	auth := c.Get(fiber.HeaderAuthorization)
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return errUnauthorized
	}
	p, err := q.keys.lookup(c.UserContext(), strings.TrimSpace(auth[len(prefix):]))
	if err != nil {
		return err
	}
	if p == nil {
		return errUnauthorized
	}
	if asked := c.Query("reseller"); !p.operator && asked != "" && asked != p.reseller {
		return errOtherReseller
	}
	c.Locals(principalKey, p)
	return c.Next()
}

// scoped picks the one reseller a request sees (an operator names it in
// ?reseller=) and its time zone.
func (q *Query) scoped(c *fiber.Ctx) error {
	p := principalOf(c)
	s := scope{reseller: p.reseller, revenue: p.revenue, who: p}
	asked := c.Query("reseller")
	switch {
	case p.operator && asked == "":
		return badParam("reseller", "an operator key must pick a reseller with ?reseller=")
	case p.operator && !schemas.ValidToken(asked):
		return badParam("reseller", "reseller %q: want 1-64 of [A-Za-z0-9_-]", asked)
	case p.operator:
		s.reseller = asked
	}
	s.tz = c.Query("tz", q.cfg.TimeZone)
	loc, err := loadZone(s.tz)
	if err != nil {
		return badParam("tz", "unknown time zone %q: use an IANA name such as Europe/Amsterdam", s.tz)
	}
	s.loc = loc
	c.Locals(scopeKey, s)
	return c.Next()
}

func principalOf(c *fiber.Ctx) *principal { return c.Locals(principalKey).(*principal) }

func scopeOf(c *fiber.Ctx) scope { return c.Locals(scopeKey).(scope) }

func (q *Query) healthz(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) }

func (q *Query) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := q.conn.Ping(ctx); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(&APIError{Code: "not_ready", Message: "clickhouse: " + err.Error()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (q *Query) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(openAPI)
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// listParam splits a comma-separated (or repeated) parameter.
func listParam(c *fiber.Ctx, name string) []string {
	var out []string
	for _, v := range c.Context().QueryArgs().PeekMulti(name) {
		for _, s := range strings.Split(string(v), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
