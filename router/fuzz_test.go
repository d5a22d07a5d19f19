package router

import (
	"reflect"
	"testing"
)

// FuzzClassify: any text classifies without panicking, the same way twice,
// and a statement the parser rejects is never certain.
func FuzzClassify(f *testing.F) {
	for _, c := range classifyCases {
		f.Add(c.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		a := Classify(sql)
		b := Classify(sql)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("classification of %q is not deterministic", sql)
		}
		if a.ParseError != "" && a.Uncertain() == "" {
			t.Fatalf("unparsable %q classified as certain", sql)
		}
		for _, c := range a.Calls() {
			if c.Scope == ScopeQueue && c.Target == (Arg{}) {
				t.Fatalf("%q: queue call without a target", sql)
			}
		}
	})
}
