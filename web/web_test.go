package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestHandler(t *testing.T) {
	index, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	assets, err := fs.Glob(FS(), "assets/*")
	if err != nil {
		t.Fatal(err)
	}
	asset := map[string]string{}
	for _, a := range assets {
		switch {
		case strings.HasSuffix(a, ".js"):
			asset["js"] = "/" + a
		case strings.HasSuffix(a, ".css"):
			asset["css"] = "/" + a
		}
	}
	if asset["js"] == "" || asset["css"] == "" {
		t.Fatalf("web/dist has no built script and stylesheet (%v): run `make web`", assets)
	}
	jsBody, err := fs.ReadFile(FS(), strings.TrimPrefix(asset["js"], "/"))
	if err != nil {
		t.Fatal(err)
	}

	app := fiber.New()
	app.Get("/v1/overview", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"ok": true}) })
	app.Use(Handler())
	app.Use(func(c *fiber.Ctx) error { return c.Status(fiber.StatusNotFound).SendString("not found") })

	for _, tc := range []struct {
		name, method, path string
		status             int
		contentType        string // prefix
		cache              string
		body               []byte // nil: not checked
	}{
		{"index at root", http.MethodGet, "/", 200, "text/html", "no-cache", index},
		{"script asset", http.MethodGet, asset["js"], 200, "text/javascript", "public, max-age=31536000, immutable", jsBody},
		{"stylesheet asset", http.MethodGet, asset["css"], 200, "text/css", "public, max-age=31536000, immutable", nil},
		{"client route gets index.html", http.MethodGet, "/organizations/o1", 200, "text/html", "no-cache", index},
		{"client route with query", http.MethodGet, "/usage?tz=Asia/Kolkata", 200, "text/html", "no-cache", index},
		{"head of a client route", http.MethodHead, "/alerts", 200, "text/html", "no-cache", nil},
		{"missing asset is a 404", http.MethodGet, "/assets/nope-123.js", 404, "", "", []byte("not found")},
		{"missing file with extension is a 404", http.MethodGet, "/favicon.ico", 404, "", "", []byte("not found")},
		{"API route still answers", http.MethodGet, "/v1/overview", 200, "application/json", "", []byte(`{"ok":true}`)},
		{"unknown API route is not swallowed", http.MethodGet, "/v1/nope", 404, "", "", []byte("not found")},
		{"API root is not swallowed", http.MethodGet, "/v1", 404, "", "", []byte("not found")},
		{"POST is not served", http.MethodPost, "/organizations", 404, "", "", []byte("not found")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := app.Test(httptest.NewRequest(tc.method, tc.path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %.80q)", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); tc.contentType != "" && !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s…", ct, tc.contentType)
			}
			if cc := res.Header.Get("Cache-Control"); tc.cache != "" && cc != tc.cache {
				t.Errorf("Cache-Control %q, want %q", cc, tc.cache)
			}
			if tc.body != nil && string(body) != string(tc.body) {
				t.Errorf("body %.120q, want %.120q", body, tc.body)
			}
		})
	}
}
