package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// section is one pair's part of the report: what was measured, a table
// and notes.
type section struct {
	pair, title, about string
	header             []string
	rows               [][]string
	notes              []string
}

// section starts the report's section for a pair.
func (h *harness) section(pair, title, about string) *section {
	s := &section{pair: pair, title: title, about: about}
	h.sections = append(h.sections, s)
	return s
}

func (s *section) row(cells ...string) { s.rows = append(s.rows, cells) }

func (s *section) notef(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// note adds a note to a pair's section, starting the section if the pair
// failed before it did.
func (h *harness) note(pair, text string) {
	for _, s := range h.sections {
		if s.pair == pair {
			s.notes = append(s.notes, text)
			return
		}
	}
	h.section(pair, pair, "").notes = []string{text}
}

// summary adds a row to the table at the head of the report, the shape
// of issue 9's: hot path, Lifeline, the peer in the same run, the ratio,
// and the machine's ceiling where one bounds Lifeline.
func (h *harness) summary(path, lifeline, peer, ratio, ceiling string) {
	h.summ = append(h.summ, []string{path, lifeline, peer, ratio, ceiling})
}

// report renders everything as markdown.
func (h *harness) report(started time.Time, measured, load0, load1 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s with `%s` on commit %s.\n", started.UTC().Format("2006-01-02 15:04 MST"), h.command(), measured)
	fmt.Fprintf(&b, "Machine: %d cores (%s), %s/%s, %s; load average %s at the start, %s at the end. ",
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load0, load1)
	fmt.Fprintf(&b, "Every side of a pair runs on this machine, load generators included; each pair's sides are interleaved, %d round(s), and the tables show medians.\n", h.cfg.rounds)
	if v := h.versions(); v != "" {
		fmt.Fprintf(&b, "Peers: %s.\n", v)
	}
	b.WriteString("\n| hot path | Lifeline | peer, same run | Lifeline ÷ peer | ceiling on this machine |\n|---|---|---|---|---|\n")
	for _, r := range h.summ {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
	}
	for _, s := range h.sections {
		fmt.Fprintf(&b, "\n#### %s\n\n", s.title)
		if s.about != "" {
			fmt.Fprintf(&b, "%s\n\n", s.about)
		}
		if len(s.rows) > 0 {
			fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(s.header, " | "), strings.Repeat("---|", len(s.header)))
			for _, r := range s.rows {
				fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
			}
			b.WriteString("\n")
		}
		for _, n := range s.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// command is the command line that reproduces the run.
func (h *harness) command() string {
	c := "go run ./cmd/benchpeers"
	if h.cfg.quick {
		c += " -quick"
	}
	if h.cfg.rounds != 3 && !h.cfg.quick {
		c += fmt.Sprintf(" -rounds %d", h.cfg.rounds)
	}
	return c
}

// versions names the peers' versions, as far as they say.
func (h *harness) versions() string {
	var out []string
	ask := func(name string, bin string, args ...string) {
		if bin == "" {
			return
		}
		b, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil && len(b) == 0 {
			return
		}
		line := strings.TrimSpace(strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0])
		out = append(out, fmt.Sprintf("%s (`%s`)", name, line))
	}
	if bin, err := findBinary(h.cfg.tile38, "tile38-server"); err == nil {
		ask("Tile38", bin, "--version")
	}
	if bin, err := findBinary(h.cfg.mosquitto, "mosquitto", "/usr/sbin/mosquitto"); err == nil {
		ask("Mosquitto", bin, "-h")
	}
	if bin, err := findBinary(h.cfg.redis, "redis-server"); err == nil {
		ask("Redis", bin, "--version")
	}
	return strings.Join(out, ", ")
}

// rate formats a rate with thousands separators.
func rate(x float64) string {
	switch {
	case x >= 100:
		return count(int(x + 0.5))
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// count formats n with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ms formats a duration in the unit that suits it.
func ms(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// ratio formats a ÷ b, as 1/x when it is small.
func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "–"
	}
	r := a / b
	switch {
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	case r >= 0.01:
		return fmt.Sprintf("%.3f×", r)
	}
	return fmt.Sprintf("1/%s", count(int(b/a+0.5)))
}

// pct formats a ÷ b as a percentage, with two significant digits below
// 10%.
func pct(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	if p := 100 * a / b; p < 10 {
		return fmt.Sprintf("%.2g%%", p)
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}
