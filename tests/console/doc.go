// Package console holds the web console's end-to-end tests: the whole stack
// (stack.Start, as `mqstack up` runs it) in front of a real Postgres, and
// the console opened in a real headless Chromium (Debian's `chromium`,
// installed by `make deps`), driven with chromedp. No browser is ever
// downloaded. Each failing test leaves a screenshot of the page, named in
// its log.
package console
