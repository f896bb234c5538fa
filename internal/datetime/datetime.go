// Package datetime reads the free-form dates OSTree's commands take (commit
// --timestamp, prune --keep-younger-than): the commonly written part of the
// GNU date input syntax, with GNU's meaning for each form.
//
// Accepted items, separated by spaces, in any order, case-insensitive:
//
//   - calendar dates: 2024-01-31, 24-01-31, 1/31/2024, 2024/01/31, 1/31,
//     Jan 31, Jan 31 2024, January 31, 2024, 31 Jan 2024, 31-Jan-2024; a
//     two-digit year is 1969-2068, any other the year as written (1-01-01
//     is the year 1, 02024-01-31 the year 2024)
//   - times of day: 13:04, 13:04:05, 13:04:05.25, 1pm, 1:04 pm; "T" may join
//     an ISO date to its time (2024-01-31T13:04:05, 2024-01-31T13+02)
//   - numbers standing alone, read as GNU reads them: after a date without
//     a year, and before any relative item, one of three or more digits (or
//     any, after a time) is its year (Jan 31 12:00 2024); otherwise five
//     digits or more are a date, YYYYMMDD or YYMMDD (20240131), and up to
//     four a time, HH or HHMM (1530, 9); an hour may take a zone offset
//     (13 +02), and a signed count may follow the number (20240131 -1 day)
//   - zones: Z, UTC, UT, GMT, a few abbreviations (EST, CET, JST, ...), and
//     a numeric offset after a 24-hour time or a zone name: +0200, +02:00,
//     -05, UTC+2; a signed count after a zone name is a relative item
//     (UTC -1 day)
//   - weekdays: monday, mon, tues, ... optionally after last, this, next, an
//     ordinal word (first, third ... twelfth) or a count (2 monday)
//   - relative items: [+|-]N unit [ago], unit [ago], last/this/next unit,
//     with units year, month, fortnight, week, day, hour, minute (min),
//     second (sec), singular or plural; "ago" turns only the item before
//     it; now and today (no change), yesterday and tomorrow (a day back or
//     on)
//   - @SECONDS since the epoch, with a fraction or a sign, on its own
//   - nothing: an empty or blank string is the start of today, as in GNU
//
// Fields the string leaves out come from now's wall clock; a date or weekday
// without a time means midnight. Times with no zone are read in the
// location the caller passes; one the clocks skip there is an error, and
// one they pass twice is the one glibc's mktime (under GNU's parser and so
// OSTree's) finds: the reading at the offset in effect at the fields taken
// as UTC, which is the later instant east of UTC and the earlier west of
// it (02:30 as CEST ends in Berlin is 01:30 UTC, 01:30 as EDT ends in New
// York 05:30 UTC). Weekdays move the date first (to the
// next such day, today included), then years, months and days are added
// to the calendar fields, with overflow carried as mktime does (Jan 31 + 1
// month is Mar 2 or 3), and finally hours, minutes and seconds are added
// as elapsed time. So "yesterday" is this time of day, one calendar day
// back, and "today" is now. Relative items alone keep now's UTC offset
// across a change of daylight saving time, and a zone with no date or
// time ("now UTC") reads the local wall clock in that zone: both as GNU.
//
// Some GNU readings are refused rather than followed, because they rarely
// mean what was written: a signed count right after a 24-hour time
// ("12:00 -3 days", which GNU reads as zone -03 plus one day) or after a
// day and month ("31 Jan +1 month", the year 1), a number after a day and
// month followed by a unit ("30 Nov 5 days", the year 5 plus a day), and a
// zone on its own. Military zone letters other than Z are refused too:
// date(1) and OSTree read them with opposite signs (A is UTC+1 to one,
// UTC-1 to the other). Anything not listed above is an error too.
package datetime

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Parse returns the time s names. now is the reference for relative items
// and omitted fields; times without a zone are read in loc, which is also
// the location of the result.
func Parse(s string, now time.Time, loc *time.Location) (time.Time, error) {
	t, err := parse(s, now, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid date %q: %w", s, err)
	}
	return t, nil
}

func parse(s string, now time.Time, loc *time.Location) (time.Time, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		// GNU reads an empty or blank string as the start of today.
		p := &parser{clock: true}
		return p.resolve(now, loc)
	}
	if in[0] == '@' {
		t, err := epoch(in[1:])
		if err != nil {
			return time.Time{}, err
		}
		return inRange(t.In(loc))
	}
	toks, err := lex(in)
	if err != nil {
		return time.Time{}, err
	}
	p := &parser{toks: toks}
	for p.i < len(p.toks) {
		if err := p.item(); err != nil {
			return time.Time{}, err
		}
	}
	return p.resolve(now, loc)
}

// epoch reads the text after '@': [sign] digits [(.|,) digits].
func epoch(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = strings.TrimLeft(s[1:], " \t")
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !hasFrac {
		whole, frac, hasFrac = strings.Cut(s, ",")
	}
	if !allDigits(whole) || (hasFrac && !allDigits(frac)) {
		return time.Time{}, fmt.Errorf("want @SECONDS[.FRACTION]")
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > maxUnix {
		if neg {
			return time.Time{}, errBefore
		}
		return time.Time{}, errAfter
	}
	ns := fraction(frac)
	if neg {
		sec, ns = -sec, -ns
	}
	return time.Unix(sec, ns), nil
}

// The errors of times outside the years 0 to 9999 (UTC), which GLib, and
// so OSTree's show and log, cannot print either.
var (
	errBefore = errors.New("out of range: before the year 0 (UTC)")
	errAfter  = errors.New("out of range: after the year 9999 (UTC)")
)

// maxUnix is the last second of year 9999, beyond which nothing here goes.
const maxUnix = 253402300799

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// fraction turns the digits after a decimal point into nanoseconds,
// dropping digits past the ninth.
func fraction(digits string) int64 {
	var ns int64
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(digits) {
			ns += int64(digits[i] - '0')
		}
	}
	return ns
}

type kind int

const (
	num kind = iota
	word
	punct
)

type token struct {
	kind  kind
	text  string // digits, a lower-case word, or one punctuation character
	space bool   // whitespace comes before it
}

func (t token) is(s string) bool { return t.kind != num && t.text == s }

func lex(s string) ([]token, error) {
	var toks []token
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		j := i + 1
		switch {
		case c == ' ' || c == '\t':
			space = true
			i++
			continue
		case c >= '0' && c <= '9':
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			toks = append(toks, token{num, s[i:j], space})
		case isLetter(c):
			for j < len(s) && isLetter(s[j]) {
				j++
			}
			toks = append(toks, token{word, strings.ToLower(s[i:j]), space})
			// An abbreviation's dot ("Nov.", "mon.") belongs to the word.
			if j < len(s) && s[j] == '.' {
				j++
			}
		case strings.IndexByte(":-+/,.", c) >= 0:
			toks = append(toks, token{punct, s[i:j], space})
		default:
			return nil, fmt.Errorf("unexpected %q", s[i:])
		}
		space = false
		i = j
	}
	return toks, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// last records what the previous item was, which decides whether a signed
// number is a zone offset and whether "T" joins a date to its time.
type last int

const (
	lastOther last = iota
	lastISODate
	lastTime
	lastZoneName
)

type parser struct {
	toks []token
	i    int
	prev last

	date, clock, zone, wday bool
	yearSet                 bool // the date names its year

	year, month, day     int
	hour, min, sec, nsec int
	off                  int // zone offset, seconds east of UTC
	weekday              time.Weekday
	ordinal              int

	relM, relD, relS int64 // relative months, days and seconds
	rel              bool  // a relative item was given, if only "now" or "0 days"
}

// peek returns the token k places ahead, or a zero token past the end.
func (p *parser) peek(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return token{kind: punct}
}

// tight reports whether tokens i+1 through i+k follow without spaces.
func (p *parser) tight(k int) bool {
	if p.i+k >= len(p.toks) {
		return false
	}
	for j := 1; j <= k; j++ {
		if p.toks[p.i+j].space {
			return false
		}
	}
	return true
}

func (p *parser) item() error {
	t := p.peek(0)
	var err error
	prev := lastOther
	switch {
	case t.kind == num:
		prev, err = p.number()
	case t.is("+") || t.is("-"):
		prev, err = p.signed()
	case t.kind == word:
		prev, err = p.word()
	default:
		err = fmt.Errorf("unexpected %q", t.text)
	}
	p.prev = prev
	return err
}

func (p *parser) number() (last, error) {
	n, next := p.peek(0), p.peek(1)
	switch {
	case next.is("-") && p.peek(2).kind == num && p.peek(3).is("-") && p.peek(4).kind == num && p.tight(4):
		err := p.setDate(p.peek(0), p.peek(2), p.peek(4))
		p.i += 5
		return lastISODate, err
	case next.is("-") && monthOf(p.peek(2)) > 0 && p.peek(3).is("-") && p.peek(4).kind == num && p.tight(4):
		err := p.setNamedDate(n, p.peek(2), p.peek(4))
		p.i += 5
		return lastOther, err
	case next.is("/") && p.peek(2).kind == num && p.tight(2):
		var err error
		if p.peek(3).is("/") && p.peek(4).kind == num && p.tight(4) {
			if len(n.text) >= 4 { // YYYY/MM/DD
				err = p.setDate(n, p.peek(2), p.peek(4))
			} else { // MM/DD/YY[YY]
				err = p.setDate(p.peek(4), n, p.peek(2))
			}
			p.i += 5
		} else { // MM/DD
			err = p.setDate(token{}, n, p.peek(2))
			p.i += 3
		}
		return lastOther, err
	case next.is(":") || meridian(next) >= 0:
		return p.timeOfDay()
	case unitOf(next) != nil:
		v, err := count(n)
		if err != nil {
			return lastOther, err
		}
		p.i++
		return lastOther, p.relative(v)
	case weekdayOf(next) >= 0: // "2 monday": the second Monday from today
		v, err := count(n)
		if err != nil {
			return lastOther, err
		}
		p.i++
		return lastOther, p.setWeekday(int(v), true)
	case monthOf(next) > 0: // 31 Jan [YEAR]
		p.i += 2
		var y token
		if sign := p.peek(0); (sign.is("+") || sign.is("-")) && p.peek(1).kind == num {
			// GNU takes it as the year, its sign dropped (31-Jan-2024).
			return lastOther, fmt.Errorf("after a day and month, %s%s is the year; put the relative item first or join the year with -", sign.text, p.peek(1).text)
		}
		if p.peek(0).kind == num {
			y = p.peek(0)
			if err := p.yearNotCount(); err != nil {
				return lastOther, err
			}
			p.i++
		}
		return lastOther, p.setNamedDate(n, next, y)
	case (next.is("+") || next.is("-")) && p.peek(2).kind == num && unitOf(p.peek(3)) == nil:
		return lastOther, p.hourOffset()
	case (next.is("+") || next.is("-")) && p.peek(2).kind == num && p.peek(4).is("ago"):
		return lastOther, fmt.Errorf("ago cannot turn %s%s %s after the number %s", next.text, p.peek(2).text, p.peek(3).text, n.text)
	}
	// A number standing alone, or before a signed count ("20240131 -1
	// day"), is a date, a time or a year by its length and what came
	// before, as GNU reads it.
	p.i++
	return lastOther, p.digits(n)
}

// yearNotCount refuses a number that GNU takes as the year of the date
// before it ("30 Nov 5 days" is 1 December of year 5) where it reads as a
// count.
func (p *parser) yearNotCount() error {
	if after := p.peek(1); unitOf(after) != nil || weekdayOf(after) >= 0 {
		return fmt.Errorf("after a day and month, %s is the year, not a count for %s; put the relative item first", p.peek(0).text, after.text)
	}
	return nil
}

// hourOffset reads an hour and a zone offset at the cursor: "12 +5" is
// 12:00 at UTC+05.
func (p *parser) hourOffset() error {
	if p.zone {
		return fmt.Errorf("more than one zone")
	}
	h := p.peek(0)
	neg := p.peek(1).is("-")
	p.i += 2
	start := p.i
	if err := p.offset(neg); err != nil {
		return err
	}
	// GNU takes a signed number right after such an offset only when the
	// offset has minutes after a colon ("12 +5:00 -1 day").
	if p.i-start == 1 && (p.peek(0).is("+") || p.peek(0).is("-")) {
		return fmt.Errorf("after %s %s%s, a signed number needs the offset written +HH:MM", h.text, p.toks[start-1].text, p.toks[start].text)
	}
	v, err := strconv.Atoi(h.text)
	if err != nil || v > 23 {
		return fmt.Errorf("hour %s out of range", h.text)
	}
	return p.setClock(v, 0, 0, 0)
}

// digits reads a number standing alone, as GNU does: the year of a date
// given without one, when it follows that date (and no relative item) and
// has more than two digits or comes after a time; otherwise, with five
// digits or more, a date [YY..]YYMMDD; otherwise a time: H or HH is that
// hour, HMM or HHMM that hour and minute.
func (p *parser) digits(n token) error {
	t := n.text
	switch {
	case p.date && !p.yearSet && !p.rel && (p.clock || len(t) > 2):
		y, err := year(n)
		p.year, p.yearSet = y, true
		return err
	case len(t) > 4:
		l := len(t)
		return p.setDate(token{kind: num, text: t[:l-4]}, token{kind: num, text: t[l-4 : l-2]}, token{kind: num, text: t[l-2:]})
	}
	v, _ := strconv.Atoi(t)
	h, m := v, 0
	if len(t) > 2 {
		h, m = v/100, v%100
	}
	if h > 23 || m > 59 {
		return fmt.Errorf("%s is neither HH nor HHMM", t)
	}
	return p.setClock(h, m, 0, 0)
}

func (p *parser) signed() (last, error) {
	neg := p.peek(0).is("-")
	n := p.peek(1)
	if n.kind != num {
		return lastOther, fmt.Errorf("a sign must be followed by a number")
	}
	p.i++
	sign, unit := p.toks[p.i-1].text, unitOf(p.peek(1)) != nil
	switch {
	case p.prev == lastTime && unit:
		// GNU reads "12:00 -3 days" as 12:00 at UTC-03 plus one day.
		return lastOther, fmt.Errorf("after a time, %s%s %s would be read as a zone offset and one %s; write the relative item before the time or the offset as +HH:MM",
			sign, n.text, p.peek(1).text, strings.TrimSuffix(p.peek(1).text, "s"))
	case p.prev == lastTime:
		return lastOther, p.offset(neg)
	case p.prev == lastZoneName && !unit:
		if p.off != 0 { // GNU's own reading of EST+1 depends on $TZ
			return lastOther, fmt.Errorf("a zone other than UTC takes no offset (%s%s); write the zone as one offset", sign, n.text)
		}
		return lastOther, p.offset(neg)
	case p.prev == lastZoneName && p.peek(2).is("ago"):
		return lastOther, fmt.Errorf("ago cannot turn %s%s %s after a zone", sign, n.text, p.peek(1).text)
	}
	// Elsewhere, as after a zone name ("UTC -1 day"), it is a count.
	if !unit {
		return lastOther, fmt.Errorf("a signed number (%s) needs a unit, such as days", n.text)
	}
	v, err := count(n)
	if err != nil {
		return lastOther, err
	}
	if neg {
		v = -v
	}
	p.i++
	return lastOther, p.relative(v)
}

// offset reads a numeric zone offset at the cursor: H, HH, HHMM or HH:MM.
func (p *parser) offset(neg bool) error {
	if p.zone && p.prev != lastZoneName {
		return fmt.Errorf("more than one zone")
	}
	n := p.peek(0)
	p.i++
	var h, m int
	switch len(n.text) {
	case 1, 2:
		h, _ = strconv.Atoi(n.text)
		if p.peek(0).is(":") && p.peek(1).kind == num && len(p.peek(1).text) == 2 && p.tight(1) {
			m, _ = strconv.Atoi(p.peek(1).text)
			p.i += 2
		}
	case 3, 4:
		v, _ := strconv.Atoi(n.text)
		h, m = v/100, v%100
	default:
		return fmt.Errorf("zone offset %s: want HH, HHMM or HH:MM", n.text)
	}
	if h > 24 || m > 59 {
		return fmt.Errorf("zone offset %s out of range", n.text)
	}
	o := (h*60 + m) * 60
	if neg {
		o = -o
	}
	p.zone = true
	p.off += o
	return nil
}

// timeOfDay reads H[H]:MM[:SS[.frac]] [am|pm] or H[H] am|pm at the cursor.
// A zone offset may follow a 24-hour time, not one with am or pm.
func (p *parser) timeOfDay() (last, error) {
	if err := p.setClock(0, 0, 0, 0); err != nil {
		return lastOther, err
	}
	h := p.peek(0)
	p.i++
	if len(h.text) > 2 {
		return lastOther, fmt.Errorf("hour %s", h.text)
	}
	p.hour, _ = strconv.Atoi(h.text)
	if p.peek(0).is(":") {
		m := p.peek(1)
		if m.kind != num || len(m.text) != 2 && len(m.text) != 1 || !p.tight(1) {
			return lastOther, fmt.Errorf("want HH:MM after %s", h.text)
		}
		p.min, _ = strconv.Atoi(m.text)
		p.i += 2
		if p.peek(0).is(":") {
			s := p.peek(1)
			if s.kind != num || len(s.text) > 2 || !p.tight(1) {
				return lastOther, fmt.Errorf("want HH:MM:SS")
			}
			p.sec, _ = strconv.Atoi(s.text)
			p.i += 2
			if (p.peek(0).is(".") || p.peek(0).is(",")) && p.peek(1).kind == num && p.tight(1) {
				p.nsec = int(fraction(p.peek(1).text))
				p.i += 2
			}
		}
	}
	if p.min > 59 || p.sec > 59 {
		return lastOther, fmt.Errorf("time %02d:%02d:%02d out of range", p.hour, p.min, p.sec)
	}
	if md := meridian(p.peek(0)); md >= 0 {
		if p.hour < 1 || p.hour > 12 {
			return lastOther, fmt.Errorf("hour %d with %s", p.hour, p.peek(0).text)
		}
		p.hour = p.hour%12 + md
		p.i++
		return lastOther, nil
	}
	if p.hour > 23 {
		return lastOther, fmt.Errorf("hour %d out of range", p.hour)
	}
	return lastTime, nil
}

// setClock records the time of day.
func (p *parser) setClock(h, m, s, ns int) error {
	if p.clock {
		return fmt.Errorf("more than one time of day")
	}
	p.clock = true
	p.hour, p.min, p.sec, p.nsec = h, m, s, ns
	return nil
}

// meridian returns the hours am or pm adds, or -1 when t is neither.
func meridian(t token) int {
	switch {
	case t.is("am"):
		return 0
	case t.is("pm"):
		return 12
	}
	return -1
}

func (p *parser) word() (last, error) {
	w := p.peek(0)
	switch {
	case w.is("t") && p.prev == lastISODate && p.peek(1).kind == num &&
		(p.peek(2).is(":") || (p.peek(2).is("+") || p.peek(2).is("-")) && p.peek(3).kind == num && unitOf(p.peek(4)) == nil):
		// The ISO 8601 separator between a date and its time, which is
		// H:MM... or an hour with a zone offset.
		p.i++
		return lastOther, nil
	case monthOf(w) > 0:
		d := p.peek(1)
		if d.kind != num {
			return lastOther, fmt.Errorf("month %s without a day", w.text)
		}
		p.i += 2
		var y token
		// A number after a comma is the year ("Jan 31, 2024"); one
		// without is read on its own (digits), a year or a time.
		if p.peek(0).is(",") {
			p.i++
			if y = p.peek(0); y.kind != num {
				return lastOther, fmt.Errorf("want a year after %s %s,", w.text, d.text)
			}
			if err := p.yearNotCount(); err != nil {
				return lastOther, err
			}
			p.i++
		}
		return lastOther, p.setNamedDate(d, w, y)
	case weekdayOf(w) >= 0:
		return lastOther, p.setWeekday(0, false)
	case w.text == "now" || w.text == "today":
		p.rel = true
		p.i++
		return lastOther, nil
	case w.text == "yesterday" || w.text == "tomorrow":
		p.i++
		if w.text == "yesterday" {
			return lastOther, p.addRel(0, -1, 0)
		}
		return lastOther, p.addRel(0, 1, 0)
	case unitOf(w) != nil:
		return lastOther, p.relative(1)
	}
	if o, ok := ordinals[w.text]; ok {
		p.i++
		switch {
		case weekdayOf(p.peek(0)) >= 0:
			return lastOther, p.setWeekday(o, true)
		case unitOf(p.peek(0)) != nil:
			return lastOther, p.relative(int64(o))
		}
		return lastOther, fmt.Errorf("%s must be followed by a unit or a weekday", w.text)
	}
	if o, ok := zones[w.text]; ok {
		if p.zone {
			return lastOther, fmt.Errorf("more than one zone")
		}
		p.zone, p.off = true, o
		p.i++
		return lastZoneName, nil
	}
	if h := military(w.text); h != 0 {
		return lastOther, fmt.Errorf("zone letter %q is UTC%+03d:00 to date(1) but UTC%+03d:00 to OSTree (RFC 822's reversed signs); write the offset instead",
			strings.ToUpper(w.text), h, -h)
	}
	return lastOther, fmt.Errorf("unknown word %q", w.text)
}

// military returns the hours east of UTC that date(1) reads a military
// zone letter as, or 0 for other words. OSTree's older parser reads each
// with the opposite sign, so these are refused rather than guessed; Z,
// zero in both, is a zone name and J, local time, no zone.
func military(w string) int {
	if len(w) != 1 || w[0] < 'a' || w[0] > 'y' || w[0] == 'j' {
		return 0
	}
	switch c := int(w[0]); {
	case c < 'j': // A-I: +1 to +9
		return c - 'a' + 1
	case c <= 'm': // K-M: +10 to +12
		return c - 'a'
	default: // N-Y: -1 to -12
		return -(c - 'm')
	}
}

var ordinals = map[string]int{
	"last": -1, "this": 0, "next": 1, "first": 1, "third": 3, "fourth": 4,
	"fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
	"tenth": 10, "eleventh": 11, "twelfth": 12,
}

// zones are the zone names accepted, as seconds east of UTC.
var zones = map[string]int{
	"z": 0, "utc": 0, "ut": 0, "gmt": 0, "wet": 0, "west": 3600,
	"cet": 3600, "cest": 7200, "eet": 7200, "eest": 10800,
	"est": -5 * 3600, "edt": -4 * 3600, "cst": -6 * 3600, "cdt": -5 * 3600,
	"mst": -7 * 3600, "mdt": -6 * 3600, "pst": -8 * 3600, "pdt": -7 * 3600,
	"jst": 9 * 3600,
}

func monthOf(t token) int {
	if t.kind != word {
		return 0
	}
	if t.text == "sept" {
		return 9
	}
	for m := time.January; m <= time.December; m++ {
		name := strings.ToLower(m.String())
		if t.text == name || t.text == name[:3] {
			return int(m)
		}
	}
	return 0
}

func weekdayOf(t token) time.Weekday {
	if t.kind != word {
		return -1
	}
	switch t.text {
	case "tues":
		return time.Tuesday
	case "wednes":
		return time.Wednesday
	case "thur", "thurs":
		return time.Thursday
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if t.text == name || t.text == name[:3] {
			return d
		}
	}
	return -1
}

// setWeekday reads a weekday name at the cursor, with an optional comma
// unless counted (after an ordinal or a number).
func (p *parser) setWeekday(ordinal int, counted bool) error {
	if p.wday {
		return fmt.Errorf("more than one weekday")
	}
	p.wday, p.weekday, p.ordinal = true, weekdayOf(p.peek(0)), ordinal
	p.i++
	// GNU allows the comma after a plain weekday only ("Thu, 01 Jan").
	if p.peek(0).is(",") && !counted {
		p.i++
	}
	return nil
}

// unit is a relative unit: calendar months or days, or seconds.
type unit struct{ months, days, secs int64 }

var units = map[string]unit{
	"year": {months: 12}, "month": {months: 1}, "fortnight": {days: 14},
	"week": {days: 7}, "day": {days: 1}, "hour": {secs: 3600},
	"minute": {secs: 60}, "min": {secs: 60}, "second": {secs: 1}, "sec": {secs: 1},
}

func unitOf(t token) *unit {
	if t.kind != word {
		return nil
	}
	if u, ok := units[t.text]; ok {
		return &u
	}
	if u, ok := units[strings.TrimSuffix(t.text, "s")]; ok {
		return &u
	}
	return nil
}

// maxCount bounds a relative count, far beyond any date in range.
const maxCount = 100_000_000

func count(n token) (int64, error) {
	v, err := strconv.ParseInt(n.text, 10, 64)
	if err != nil || v > maxCount {
		return 0, fmt.Errorf("%s is too large", n.text)
	}
	return v, nil
}

// relative reads a unit at the cursor and an optional "ago", and adds n of
// it.
func (p *parser) relative(n int64) error {
	u := unitOf(p.peek(0))
	p.i++
	if p.peek(0).is("ago") {
		n = -n
		p.i++
	}
	return p.addRel(n*u.months, n*u.days, n*u.secs)
}

func (p *parser) addRel(m, d, s int64) error {
	p.rel = true
	p.relM += m
	p.relD += d
	p.relS += s
	for _, v := range []int64{p.relM, p.relD, p.relS / 3600} {
		if v > maxCount || v < -maxCount {
			return fmt.Errorf("relative offset too large")
		}
	}
	return nil
}

// setDate records a numeric date; a zero y token means the current year.
func (p *parser) setDate(y, m, d token) error {
	mo, err := strconv.Atoi(m.text)
	if err != nil || mo < 1 || mo > 12 {
		return fmt.Errorf("month %s out of range", m.text)
	}
	return p.setYMD(y, mo, d)
}

// setNamedDate records a date whose month is a name.
func (p *parser) setNamedDate(d, month, y token) error {
	return p.setYMD(y, monthOf(month), d)
}

func (p *parser) setYMD(y token, month int, d token) error {
	if p.date {
		return fmt.Errorf("more than one date")
	}
	p.date, p.month = true, month
	if y.text != "" {
		v, err := year(y)
		if err != nil {
			return err
		}
		p.year, p.yearSet = v, true
	}
	day, err := strconv.Atoi(d.text)
	if err != nil || len(d.text) > 2 || day < 1 || day > 31 {
		return fmt.Errorf("day %s out of range", d.text)
	}
	p.day = day
	return nil
}

// year reads a year as GNU does: two digits are 1969-1999 (69-99) or
// 2000-2068 (00-68), any other number of digits the year as written
// ("020" is the year 20).
func year(t token) (int, error) {
	v, err := strconv.Atoi(t.text)
	if err != nil || v > maxYear {
		return 0, fmt.Errorf("year %s out of range", t.text)
	}
	if len(t.text) == 2 {
		if v >= 69 {
			return 1900 + v, nil
		}
		return 2000 + v, nil
	}
	return v, nil
}

// maxYear bounds the years read, so that date arithmetic cannot overflow;
// results past 9999 are refused in any case.
const maxYear = 999_999

func (p *parser) resolve(now time.Time, loc *time.Location) (time.Time, error) {
	zl := loc
	if p.zone {
		zl = time.FixedZone(zoneName(p.off), p.off)
	}
	nl := now.In(loc)
	y, mo, d := nl.Date()
	h, mi, s := nl.Clock()
	ns := nl.Nanosecond()
	if p.date {
		mo, d = time.Month(p.month), p.day
		if p.yearSet {
			y = p.year
		}
		if d > daysIn(y, mo) {
			return time.Time{}, fmt.Errorf("%s has no day %d", mo, d)
		}
	}
	if p.clock {
		h, mi, s, ns = p.hour, p.min, p.sec, p.nsec
	} else if p.date || p.wday {
		h, mi, s, ns = 0, 0, 0, 0
	}
	var t time.Time
	explicit := p.date || p.clock || p.wday
	if explicit {
		var ok bool
		if t, ok = wall(y, mo, d, h, mi, s, ns, zl, nil); !ok {
			return time.Time{}, fmt.Errorf("%04d-%02d-%02d %02d:%02d:%02d does not exist in %s (the clocks skip it)", y, mo, d, h, mi, s, zl)
		}
	} else {
		// Relative items alone keep now's UTC offset across a change of
		// daylight saving time, as GNU's do: "6 weeks ago" from 09:00 EST
		// is 10:00 EDT.
		_, o := nl.Zone()
		t = nl.In(time.FixedZone(zoneName(o), o))
	}
	if p.wday && !p.date {
		cur := t.Weekday()
		days := (int(p.weekday) - int(cur) + 7) % 7
		o := p.ordinal
		if o > 0 && cur != p.weekday {
			o-- // "next friday" on a Thursday is tomorrow
		}
		t = shift(t, 0, int64(days+7*o))
	}
	if p.relM != 0 || p.relD != 0 {
		t = shift(t, p.relM, p.relD)
	}
	if p.zone && !explicit && p.relM == 0 && p.relD == 0 && p.relS == 0 && !p.rel {
		return time.Time{}, fmt.Errorf("a zone needs a date, a time or a relative item")
	}
	if p.zone && !explicit {
		// A zone with no date or time ("now UTC") reads the local wall
		// clock in that zone, as GNU does.
		l := t.In(loc)
		y, mo, d := l.Date()
		h, mi, s := l.Clock()
		t = time.Date(y, mo, d, h, mi, s, l.Nanosecond(), zl)
	}
	t = time.Unix(t.Unix()+p.relS, int64(t.Nanosecond())).In(loc)
	return inRange(t)
}

func zoneName(off int) string {
	if off == 0 {
		return "UTC"
	}
	return time.Unix(0, 0).In(time.FixedZone("", off)).Format("-07:00")
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func inRange(t time.Time) (time.Time, error) {
	if y := t.UTC().Year(); y < 0 {
		return time.Time{}, errBefore
	} else if y > 9999 {
		return time.Time{}, errAfter
	}
	return t, nil
}

// shift adds months and days to t's calendar fields, keeping its time of
// day, and carries overflow into the next month or year.
func shift(t time.Time, months, days int64) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	// Months first, as mktime normalises them before days: Jan 31 + 1 month
	// + 1 day is Feb 32, so Mar 4 (or Mar 3 in a leap year).
	n := time.Date(y+int(months/12), mo+time.Month(months%12), d, 0, 0, 0, 0, time.UTC)
	n = n.AddDate(0, 0, int(days))
	_, off := t.Zone()
	r, _ := wall(n.Year(), n.Month(), n.Day(), h, mi, s, t.Nanosecond(), t.Location(), &off)
	return r
}

// wall returns the instant whose wall clock in loc reads the given fields,
// and whether that reading exists. A reading the clocks pass twice gives
// the one with offset prefer when set, else mktime's (mktimeChoice); a
// reading the
// clocks skip gives the instant that many seconds past the offset before
// the skip (as mktime does), with ok false.
func wall(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location, prefer *int) (time.Time, bool) {
	w := time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	g := time.Date(y, mo, d, h, mi, s, ns, loc)
	var offs []int
	for _, at := range []time.Time{g, g.Add(-24 * time.Hour), g.Add(24 * time.Hour)} {
		_, o := at.Zone()
		offs = append(offs, o)
	}
	var cands []time.Time
	for _, o := range offs {
		c := w.Add(-time.Duration(o) * time.Second).In(loc)
		if _, co := c.Zone(); co == o && !slices.ContainsFunc(cands, c.Equal) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		sort.Ints(offs)
		return w.Add(-time.Duration(offs[0]) * time.Second).In(loc), false
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Before(cands[j]) })
	if prefer != nil {
		for _, c := range cands {
			if _, o := c.Zone(); o == *prefer {
				return c, true
			}
		}
	}
	if len(cands) > 1 {
		return mktimeChoice(w, loc, cands), true
	}
	return cands[0], true
}

// mktimeChoice picks among the instants cands whose wall clock in loc
// reads w's fields as glibc's mktime does: from w taken as UTC, it steps
// to the fields less the offset in effect at its guess until that offset
// holds there, so the first candidate that walk meets; the earliest if it
// meets none.
func mktimeChoice(w time.Time, loc *time.Location, cands []time.Time) time.Time {
	guess := w
	for range 4 {
		_, o := guess.In(loc).Zone()
		guess = w.Add(-time.Duration(o) * time.Second)
		for _, c := range cands {
			if c.Equal(guess) {
				return c
			}
		}
	}
	return cands[0]
}
