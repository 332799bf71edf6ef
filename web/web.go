// Package web is the reseller dashboard page: a single-page app built from
// web/src with vite into web/dist, which is committed and embedded here so
// that `go build` alone produces a binary serving a working dashboard.
package web

import (
	"embed"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed all:dist
var dist embed.FS

// FS returns the built dashboard files (index.html at the root).
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed directive guarantees dist exists
	}
	return sub
}

// Handler serves the dashboard: files of the bundle by path, with long
// caching for content-hashed assets, and index.html for every other GET
// path so the page's own router can handle it. Paths under /v1 (the API)
// are passed on, so an unknown API route never answers with the page.
func Handler() fiber.Handler {
	files := FS()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err)
	}
	return func(c *fiber.Ctx) error {
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			return c.Next()
		}
		p := strings.TrimPrefix(path.Clean(c.Path()), "/")
		if p == "v1" || strings.HasPrefix(p, "v1/") {
			return c.Next() // the API's own 404, never the page
		}
		if p != "" && p != "index.html" {
			if b, err := fs.ReadFile(files, p); err == nil {
				if strings.HasPrefix(p, "assets/") {
					c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
				}
				c.Type(path.Ext(p))
				return c.Send(b)
			}
			if strings.HasPrefix(p, "assets/") || path.Ext(p) != "" {
				return c.Next()
			}
		}
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Type("html", "utf-8")
		return c.Send(index)
	}
}
