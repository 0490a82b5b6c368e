package httpapi

import (
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/harmonia-ml/harmonia"
)

// Bounds of the problems one check answer lists.
const (
	// CheckLimitDefault is how many problems GET /check and POST
	// /check/repair list when the request gives no limit.
	CheckLimitDefault = 100
	// CheckLimitMax is the most problems one answer lists; the others
	// are counted in CheckResult.More.
	CheckLimitMax = 1000
)

// CheckResult is the answer of GET /check and POST /check/repair: what
// [harmonia.Store.Check] found. A problem found is data, not an error:
// the status is 200 either way. The problems listed are the first limit
// found, in the order found; More counts the rest, so the answer stays
// bounded however broken the inventory is.
type CheckResult struct {
	// OK is true when every problem found was repaired (or none was).
	OK bool `json:"ok"`
	// Found counts the problems found, listed or not.
	Found int `json:"found"`
	// Repaired counts those of them that were repaired.
	Repaired int `json:"repaired"`
	// Checked counts the documents read, per collection.
	Checked map[string]int `json:"checked"`
	// Problems lists the first problems found.
	Problems []*CheckProblem `json:"problems"`
	// More counts the problems found beyond those listed.
	More int `json:"more"`
}

// CheckProblem is one broken invariant the check found: a
// [harmonia.Problem] (kind, entity, key, id, field, version, detail,
// repaired) under a name of its own in the OpenAPI document, whose
// Problem is the problem document of an error.
type CheckProblem harmonia.Problem

func (h *Handler) checkOperations() []*operation {
	limit := param{name: "limit", in: openapi3.ParameterInQuery,
		desc:   fmt.Sprintf("how many problems to list, 1 to %d (default %d); the others are counted in more", CheckLimitMax, CheckLimitDefault),
		schema: openapi3.NewIntegerSchema().WithMin(1).WithMax(CheckLimitMax)}
	return []*operation{
		{method: "GET", path: "/check", id: "checkInventory", tag: "check", scope: ScopeRead,
			summary: "Check the inventory's invariants and report the problems found; changes nothing",
			description: "Reads the whole inventory once (Store.Check) and answers 200 with what it found: each problem's kind, entity, " +
				"key, field, version and detail. The first limit problems are listed; more counts the rest.",
			params: []param{limit}, ok: http.StatusOK, out: &CheckResult{}, run: func(c *call) error { return h.check(c, false) }},
		{method: "POST", path: "/check/repair", id: "repairInventory", tag: "check", scope: ScopeAdmin,
			summary: "Check the inventory and repair what can be repaired without guessing",
			description: "As GET /check, with Store.Check's repair: marks missing on a published version's members are set, marks " +
				"naming no version removed, stale pending publishes settled. What needs a person is reported with repaired false.",
			params: []param{limit}, ok: http.StatusOK, out: &CheckResult{}, run: func(c *call) error { return h.check(c, true) }},
	}
}

// check runs the Store's check, keeping the first limit problems.
func (h *Handler) check(c *call, repair bool) error {
	limit := cmpOr(queryInt(c, "limit"), CheckLimitDefault)
	out := &CheckResult{Problems: []*CheckProblem{}}
	rep, err := h.store.Check(c.ctx, &harmonia.CheckOpts{Repair: repair, OnProblem: func(p harmonia.Problem) {
		if len(out.Problems) < limit {
			out.Problems = append(out.Problems, (*CheckProblem)(&p))
		}
	}})
	if err != nil {
		return err
	}
	out.OK, out.Found, out.Repaired, out.Checked = rep.OK(), rep.Found, rep.Repaired, rep.Checked
	out.More = rep.Found - len(out.Problems)
	return c.reply(http.StatusOK, out)
}
