package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every file the page loads is embedded and served with the policy that
// keeps it to its own scripts.
func TestHandlerServesThePage(t *testing.T) {
	h := Handler("/console/")
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	page := get("/console/")
	if page.Code != 200 || !strings.Contains(page.Body.String(), "<title>mqstack console</title>") {
		t.Fatalf("page: %d", page.Code)
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	for _, ref := range []string{"vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "app.css",
		"js/api.js", "js/charts.js", "js/queues.js", "js/queue.js", "js/service.js", "js/app.js"} {
		if !strings.Contains(page.Body.String(), `"`+ref+`"`) {
			t.Errorf("the page does not load %s", ref)
		}
		if w := get("/console/" + ref); w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("%s: %d", ref, w.Code)
		}
	}
	if w := get("/console/index.html"); w.Code != http.StatusMovedPermanently {
		t.Errorf("index.html: %d", w.Code)
	}
	// Nothing on the page comes from elsewhere.
	for _, ref := range []string{"http://", "https://", "//fonts."} {
		if strings.Contains(page.Body.String(), ref) {
			t.Errorf("the page refers to %s", ref)
		}
	}
}
