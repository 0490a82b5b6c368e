package httpapi

import (
	"net/http"
	"strconv"

	"github.com/harmonia-ml/harmonia"
)

// LicenseContent is what a client says of a license: the body of
// PUT /licenses/spdx/{spdx_id}, and with the SPDX id, of POST /licenses.
type LicenseContent struct {
	TextPath      string `json:"text_path,omitempty" validate:"max=4096"`
	CommercialUse bool   `json:"commercial_use"`
	Notes         string `json:"notes,omitempty" validate:"max=10000"`
}

// LicenseInput is the body of POST /licenses.
type LicenseInput struct {
	SPDXID string `json:"spdx_id" validate:"max=200" doc:"an SPDX license id or expression, in any letter case"`
	LicenseContent
}

func (c *LicenseContent) license(spdxID string) *harmonia.License {
	return &harmonia.License{SPDXID: spdxID, TextPath: c.TextPath, CommercialUse: c.CommercialUse, Notes: c.Notes}
}

// LicensePatch is the body of PATCH /licenses/{id}; the SPDX id is the
// license's identity and does not change.
type LicensePatch struct {
	TextPath      *string `json:"text_path,omitempty" validate:"max=4096"`
	CommercialUse *bool   `json:"commercial_use,omitempty"`
	Notes         *string `json:"notes,omitempty" validate:"max=10000"`
}

// LicensePage is one page of GET /licenses.
type LicensePage struct {
	Items []*harmonia.License `json:"items"`
	// Next is the cursor of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

func (h *Handler) licenseOperations() []*operation {
	spdx := []param{pathParam("spdx_id", "the SPDX id, in any letter case")}
	return []*operation{
		{method: "GET", path: "/licenses", id: "listLicenses", tag: "licenses", scope: ScopeRead,
			summary: "List licenses, in id order, one page at a time",
			params:  []param{queryBool("commercial_use", "licenses that allow (true) or forbid (false) commercial use"), afterParam(), limitParam()},
			ok:      http.StatusOK, out: &LicensePage{}, link: true, run: func(c *call) error {
				f := harmonia.LicenseFilter{After: queryObjectID(c, "after"), Limit: queryInt(c, "limit")}
				if v := c.r.URL.Query().Get("commercial_use"); v != "" {
					b, _ := strconv.ParseBool(v)
					f.CommercialUse = &b
				}
				page, err := h.store.ListLicenses(c.ctx, f)
				if err != nil {
					return err
				}
				nextLink(c, "after", cursor(page.Next))
				return c.reply(http.StatusOK, &LicensePage{Items: nonNil(page.Items), Next: cursor(page.Next)})
			}},
		{method: "POST", path: "/licenses", id: "createLicense", tag: "licenses", scope: ScopeWrite,
			summary: "Register a license", body: &LicenseInput{},
			ok: http.StatusCreated, out: &harmonia.License{}, errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in LicenseInput
				if err := c.decode(&in); err != nil {
					return err
				}
				l := in.license(in.SPDXID)
				if err := h.store.CreateLicense(c.ctx, l); err != nil {
					return err
				}
				return c.reply(http.StatusCreated, l)
			}},
		{method: "GET", path: "/licenses/{id}", id: "getLicense", tag: "licenses", scope: ScopeRead,
			summary: "Get a license by id", params: []param{idParam("id", "the license's id")},
			ok: http.StatusOK, out: &harmonia.License{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				l, err := h.store.GetLicense(c.ctx, pathID(c, "id"))
				return answer(c, http.StatusOK, l, err)
			}},
		{method: "PATCH", path: "/licenses/{id}", id: "updateLicense", tag: "licenses", scope: ScopeWrite,
			summary: "Change a license's text path, commercial use or notes", params: []param{idParam("id", "the license's id")},
			body: &LicensePatch{}, ok: http.StatusOK, out: &harmonia.License{}, errs: []int{http.StatusNotFound, http.StatusConflict},
			run: func(c *call) error {
				var p LicensePatch
				if err := c.decode(&p); err != nil {
					return err
				}
				l, err := h.store.UpdateLicense(c.ctx, pathID(c, "id"), harmonia.LicenseUpdate{TextPath: p.TextPath, CommercialUse: p.CommercialUse, Notes: p.Notes})
				return answer(c, http.StatusOK, l, err)
			}},
		{method: "GET", path: "/licenses/spdx/{spdx_id}", id: "getLicenseBySPDXID", tag: "licenses", scope: ScopeRead,
			summary: "Get a license by its SPDX id", params: spdx,
			ok: http.StatusOK, out: &harmonia.License{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				l, err := h.store.GetLicenseBySPDXID(c.ctx, c.r.PathValue("spdx_id"))
				return answer(c, http.StatusOK, l, err)
			}},
		{method: "PUT", path: "/licenses/spdx/{spdx_id}", id: "ensureLicense", tag: "licenses", scope: ScopeWrite,
			summary:     "Get or create a license by its SPDX id",
			description: "201 when it was created, 200 when it existed with the same fields; 409 naming the first field that differs otherwise.",
			params:      spdx, body: &LicenseContent{}, ok: http.StatusCreated, also: []int{http.StatusOK},
			out: &harmonia.License{}, errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in LicenseContent
				if err := c.decode(&in); err != nil {
					return err
				}
				l := in.license(c.r.PathValue("spdx_id"))
				outcome, err := h.store.GetOrCreateLicense(c.ctx, l)
				if err != nil {
					return err
				}
				return c.reply(outcomeStatus(outcome), l)
			}},
	}
}
