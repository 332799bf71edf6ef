package schemas

import "fmt"

// dataValues parses and validates e.Data as the data of family ("job",
// "organization", ...). The strings in the values share one copy of e.Data.
func (e *Event) dataValues(family string) (vals [maxDataFields]value, err error) {
	ts := typeSpecs[e.Type]
	if ts == nil || ts.family != family {
		return vals, fmt.Errorf("schemas: event %q has type %q, not a %s.* event", e.ID, e.Type, family)
	}
	if e.parsed != nil && len(e.Data) > 0 && &e.Data[0] == e.parsedFrom {
		return *e.parsed, nil
	}
	var ps problems
	if len(e.Data) == 0 {
		ps.add("data", "required")
	} else {
		evTime := value{set: !e.Time.IsZero(), ok: !e.Time.IsZero(), t: e.Time}
		checkData(string(e.Data), ts, &evTime, &ps, &vals)
	}
	if ps.any() {
		return vals, &ValidationError{Index: -1, EventID: e.ID, EventType: e.Type, Problems: ps.list}
	}
	return vals, nil
}

// JobData returns the validated data of a job.* event. The error is a
// *ValidationError if the data is invalid, a plain error if e is not a
// job.* event.
func (e *Event) JobData() (*JobData, error) {
	v, err := e.dataValues("job")
	if err != nil {
		return nil, err
	}
	return &JobData{
		JobID:                v[jobJobID].s,
		UserID:               v[jobUserID].s,
		Model:                v[jobModel].s,
		Language:             v[jobLanguage].s,
		CreatedAt:            v[jobCreatedAt].t,
		MediaDurationSeconds: v[jobMediaDurationSeconds].f,
		ProcessingMS:         v[jobProcessingMS].i,
		ErrorCode:            v[jobErrorCode].s,
		ErrorMessage:         v[jobErrorMessage].s,
	}, nil
}

// OrganizationData returns the validated data of an organization.* event.
func (e *Event) OrganizationData() (*OrganizationData, error) {
	v, err := e.dataValues("organization")
	if err != nil {
		return nil, err
	}
	return &OrganizationData{
		Name:      v[orgName].s,
		Plan:      v[orgPlan].s,
		Status:    v[orgStatus].s,
		CreatedAt: v[orgCreatedAt].t,
	}, nil
}

// SubscriptionData returns the validated data of a subscription.changed event.
func (e *Event) SubscriptionData() (*SubscriptionData, error) {
	v, err := e.dataValues("subscription")
	if err != nil {
		return nil, err
	}
	return &SubscriptionData{
		Plan:         v[subPlan].s,
		Status:       v[subStatus].s,
		QuotaMinutes: v[subQuotaMinutes].i,
		PriceMinor:   v[subPriceMinor].i,
		Currency:     v[subCurrency].s,
		PeriodStart:  v[subPeriodStart].t,
		PeriodEnd:    v[subPeriodEnd].t,
	}, nil
}

// InvoiceData returns the validated data of an invoice.* event.
func (e *Event) InvoiceData() (*InvoiceData, error) {
	v, err := e.dataValues("invoice")
	if err != nil {
		return nil, err
	}
	return &InvoiceData{
		InvoiceID:     v[invInvoiceID].s,
		AmountMinor:   v[invAmountMinor].i,
		Currency:      v[invCurrency].s,
		FailureReason: v[invFailureReason].s,
	}, nil
}

// UserData returns the validated data of a user.* event.
func (e *Event) UserData() (*UserData, error) {
	v, err := e.dataValues("user")
	if err != nil {
		return nil, err
	}
	return &UserData{UserID: v[userUserID].s, Role: v[userRole].s}, nil
}

// CustomModelData returns the validated data of a custom_model.* event.
func (e *Event) CustomModelData() (*CustomModelData, error) {
	v, err := e.dataValues("custom_model")
	if err != nil {
		return nil, err
	}
	return &CustomModelData{
		ModelID:   v[cmModelID].s,
		Name:      v[cmName].s,
		BaseModel: v[cmBaseModel].s,
		Language:  v[cmLanguage].s,
		Shared:    v[cmShared].b,
	}, nil
}

// SystemNoticeData returns the validated data of a system.notice event.
func (e *Event) SystemNoticeData() (*SystemNoticeData, error) {
	v, err := e.dataValues("system")
	if err != nil {
		return nil, err
	}
	return &SystemNoticeData{
		NoticeID: v[noticeNoticeID].s,
		Title:    v[noticeTitle].s,
		Body:     v[noticeBody].s,
		Severity: v[noticeSeverity].s,
		Link:     v[noticeLink].s,
	}, nil
}
