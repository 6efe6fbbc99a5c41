package notify

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Values taken from the event, the instance or error messages are not ours: an instance's tags are set by
// whoever controls it, and can hold markdown, links or chat mentions. Chat text shows them only inside code
// spans, with what could close the span or form a link or mention neutralised; every value is truncated.

// truncate cuts s to at most max runes, marking the cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// plain is s on one line, without control characters, at most max runes.
func plain(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), max)
}

// block is s for a plain-text email: lines kept, other control characters removed, indented, at most max runes.
func block(s, indent string, max int) string {
	s = truncate(s, max)
	s = strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
	return indent + strings.Join(lines, "\n"+indent)
}

// chatNeutral replaces what chat markdown could act on even inside a code span: the backtick that would close
// it, the angle brackets of Slack's link and mention syntax (<http://…|…>, <!here>, <@U…>), HTML entities that
// decode to them, and @ mentions.
var chatNeutral = strings.NewReplacer(
	"`", "ˋ",
	"<", "‹",
	">", "›",
	"&", "＆",
	"@", "@\u2060",
)

// code is s as an inline code span for chat markdown: one line, neutralised, at most max runes.
func code(s string, max int) string {
	s = plain(s, max)
	if s == "" {
		return "(none)"
	}
	return "`" + chatNeutral.Replace(s) + "`"
}

// chatText is s as chat text outside a code span (titles, summaries): one line, neutralised, and without the
// characters markdown formats with.
func chatText(s string, max int) string {
	s = chatNeutral.Replace(plain(s, max))
	return strings.Map(func(r rune) rune {
		switch r {
		case '*', '_', '~', '[', ']', '|', '#':
			return ' '
		}
		return r
	}, s)
}

// subject is an SNS Subject: ASCII, no line breaks or control characters, fewer than 100 characters.
func subject(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f:
			return ' '
		case r > 0x7e:
			return '?'
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 99 {
		s = s[:98] + "~"
	}
	return s
}
