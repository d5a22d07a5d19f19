package configs

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The example file must load strictly, hold exactly the defaults, and mention
// every key, so it cannot drift from the code.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("mqstack.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{}
	if err := Decode(strings.NewReader(string(data)), &cfg); err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	def := Default()
	if def.Postgres.Settings == nil {
		def.Postgres.Settings = map[string]string{}
	}
	if !reflect.DeepEqual(cfg, def) {
		t.Fatalf("example values differ from Default():\nexample: %+v\ndefault: %+v", cfg, def)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := prefix + strings.ToUpper(k)
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(name+"_", sub)
				continue
			}
			documented[name] = true
		}
	}
	walk(EnvPrefix, tree)
	fields := map[string]reflect.Value{}
	collectEnvFields(reflect.ValueOf(&cfg).Elem(), EnvPrefix, fields)
	for env := range fields {
		if !documented[env] {
			t.Errorf("key for %s is not documented in mqstack.example.yaml", env)
		}
	}
	for env := range documented {
		if _, ok := fields[env]; !ok {
			t.Errorf("mqstack.example.yaml documents %s, which is no key", env)
		}
	}
}
