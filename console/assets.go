package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// web holds the page, its script and style, and the pinned chart library
// (web/vendor/uplot, see its README for the version and licence).
//
//go:embed web
var web embed.FS

// contentSecurityPolicy allows only the console's own files and calls to
// its own origin: no inline script, no CDN, no font or frame from
// elsewhere, so a message body shown on the page can never run as code.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the console's files under prefix (e.g. "/console/").
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic("BUG: console assets missing: " + err.Error())
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The page is small and changes with the binary: always revalidate.
		h.Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, "/index.html") {
			// FileServer would redirect it to the directory; serve it there.
			http.Redirect(w, r, prefix, http.StatusMovedPermanently)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// Link is the console's address on a REST listener at addr with a token in
// the URL fragment: browsers never send the fragment, so the token reaches
// no server log, and the page moves it to the tab's session storage.
func Link(addr, token string) string {
	link := "http://" + addr + "/console/"
	if token != "" {
		link += "#token=" + token
	}
	return link
}
