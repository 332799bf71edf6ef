package demo

import "time"

// Plans and their quotas. Prices are per month in minor units.
const (
	planTrial      = "trial"
	planStarter    = "starter"
	planPro        = "pro"
	planEnterprise = "enterprise"
)

const trialLength = 14 * 24 * time.Hour

func planQuota(plan string) int64 {
	switch plan {
	case planStarter:
		return 1_000
	case planPro:
		return 10_000
	case planEnterprise:
		return 100_000
	default:
		return 120
	}
}

func listPrice(plan, currency string) int64 {
	eur := currency == "EUR"
	switch plan {
	case planStarter:
		return pick2(eur, 4_900, 5_900)
	case planPro:
		return pick2(eur, 39_900, 44_900)
	case planEnterprise:
		return pick2(eur, 299_000, 349_000)
	default:
		return 0
	}
}

func pick2(first bool, a, b int64) int64 {
	if first {
		return a
	}
	return b
}

// Base speech models every organization can use, with their real-time
// factor (processing time per second of media).
var baseModels = []struct {
	id     string
	weight float64
	rtf    float64
}{
	{"whisper-large-v3", 0.45, 0.15},
	{"scriptix-general", 0.35, 0.08},
	{"nova-2", 0.20, 0.04},
}

const customModelRTF = 0.12

// Job failure codes and their shares among failures.
var failureCodes = []choice[string]{
	{"media_decode_error", 0.50},
	{"timeout", 0.20},
	{"unsupported_language", 0.15},
	{"internal_error", 0.15},
}

var failureMessages = map[string]string{
	"media_decode_error":   "could not decode the media file: invalid data found when processing input",
	"timeout":              "processing exceeded the time limit",
	"unsupported_language": "the selected model does not support this language",
	"internal_error":       "worker crashed while processing; please retry",
}

var paymentFailureReasons = []string{"card_declined", "insufficient_funds", "expired_card"}

// hourWeight is the relative job volume per local hour on a weekday.
var hourWeight = [24]float64{
	0.02, 0.015, 0.01, 0.01, 0.015, 0.03, 0.08, 0.25, 0.6, 0.95, 1, 0.95,
	0.65, 0.85, 0.95, 0.9, 0.75, 0.45, 0.22, 0.14, 0.1, 0.07, 0.05, 0.03,
}

var hourWeightSum, businessHourWeight = func() (float64, float64) {
	var sum, biz float64
	for h, w := range hourWeight {
		sum += w
		if h >= 9 && h < 17 {
			biz += w
		}
	}
	return sum, biz / 8
}()

// sector shapes an organization's media: typical length, spread, weekend work.
type sector struct {
	name      string
	medianMin float64
	sigma     float64
	weekend   float64
}

var (
	secLegal      = &sector{"legal", 35, 0.8, 0.06}
	secHealth     = &sector{"health", 4, 0.7, 0.15}
	secMedia      = &sector{"media", 22, 0.9, 0.35}
	secResearch   = &sector{"research", 40, 0.5, 0.08}
	secEducation  = &sector{"education", 50, 0.4, 0.05}
	secCallCenter = &sector{"callcenter", 5, 0.8, 0.30}
	secGovernment = &sector{"government", 75, 0.5, 0.03}
	secCorporate  = &sector{"corporate", 30, 0.7, 0.06}
)

type orgName struct {
	name string
	sec  *sector
}

// Scenario organizations have fixed names so operators recognise them.
var (
	spikeOrgName   = orgName{"Lumen Podcast Network", secMedia}
	quotaOrgName   = orgName{"Riverside Broadcasting", secMedia}
	paymentOrgName = orgName{"Keystone Law Group", secLegal}
	quietOrgName   = orgName{"Quanta Insights", secResearch}
	signupOrgName  = orgName{"Brightwater Studios", secMedia}
)

var orgNamePool = []orgName{
	{"Harbor & Vale Legal", secLegal}, {"Meridian Court Reporting", secLegal},
	{"Ashford Litigation Support", secLegal}, {"Van Dijk Advocaten", secLegal},
	{"Lindqvist & Partners", secLegal}, {"Sterling Deposition Co", secLegal},
	{"Kingsway Chambers", secLegal}, {"Arden Court Reporters", secLegal},
	{"Pinecrest Legal Transcripts", secLegal}, {"Greyline Investigations", secLegal},
	{"Cedar Health Clinics", secHealth}, {"Northshore Medical Group", secHealth},
	{"BrightPath Physiotherapy", secHealth}, {"St Aldric Hospital", secHealth},
	{"Clearview Radiology", secHealth}, {"Maple Family Practice", secHealth},
	{"Helix Dental Care", secHealth}, {"Aurora Health Partners", secHealth},
	{"Oakridge Therapy", secHealth}, {"Rosewood Senior Care", secHealth},
	{"Upland Veterinary", secHealth}, {"Juniper Wellness", secHealth},
	{"Northpeak Media", secMedia}, {"Bluebird Studios", secMedia},
	{"Echo Chamber Audio", secMedia}, {"Frontline Newsroom", secMedia},
	{"Parallax Films", secMedia}, {"Soundwave FM", secMedia},
	{"Daybreak Television", secMedia}, {"Hollow Oak Productions", secMedia},
	{"Mosaic Media House", secMedia}, {"Beacon Street Podcasts", secMedia},
	{"Foxglove Media", secMedia}, {"Prism Documentary", secMedia},
	{"Vireo Wildlife Films", secMedia}, {"Westwind Radio", secMedia},
	{"Yellowfin Sports Network", secMedia}, {"Larkspur Publishing", secMedia},
	{"Vantage Market Research", secResearch}, {"Fieldnote Research", secResearch},
	{"Insight Loop", secResearch}, {"Compass UX Labs", secResearch},
	{"Polaris Survey Group", secResearch}, {"Crescent Market Research", secResearch},
	{"Basalt Geoscience", secResearch}, {"Quill & Ink Transcription", secResearch},
	{"Openfield University", secEducation}, {"Brookside Academy", secEducation},
	{"Lakeside Community College", secEducation}, {"Summit Learning", secEducation},
	{"Kestrel Institute of Technology", secEducation}, {"Elmstead School District", secEducation},
	{"Zephyr Learning", secEducation}, {"Horizon Airlines Training", secEducation},
	{"BrightCall Support", secCallCenter}, {"Nimbus Contact Centers", secCallCenter},
	{"HelloHub Customer Care", secCallCenter}, {"Relay Support Services", secCallCenter},
	{"Tidewater Telecom", secCallCenter}, {"Cobalt Call Center", secCallCenter},
	{"Delta Insurance Group", secCallCenter}, {"Silverline Insurance", secCallCenter},
	{"City of Westbrook", secGovernment}, {"Harlow County Council", secGovernment},
	{"Port Authority of Ravensport", secGovernment}, {"Northgate Church Media", secGovernment},
	{"Municipality of Eastvale", secGovernment}, {"Regional Water Board", secGovernment},
	{"Atlas Logistics", secCorporate}, {"Granite Capital Partners", secCorporate},
	{"Pioneer Energy", secCorporate}, {"Orbit Software", secCorporate},
	{"Copperleaf Consulting", secCorporate}, {"Kite Aerospace", secCorporate},
	{"Evergreen Foods", secCorporate}, {"Novus Pharma", secCorporate},
	{"Redwood Realty", secCorporate}, {"Ironbridge Engineering", secCorporate},
	{"Trident Maritime", secCorporate}, {"Saffron Foods", secCorporate},
	{"Monarch Events", secCorporate}, {"Driftwood Audio Books", secMedia},
	{"Catalina Hotels", secCorporate}, {"Glacier Bank", secCallCenter},
	{"Ember Games", secCorporate}, {"Solstice Architects", secCorporate},
	{"Tamarind Travel", secCallCenter}, {"Wolfram Robotics", secCorporate},
	{"Alder Accountants", secCorporate}, {"Bramble Bakeries", secCorporate},
	{"Cypress Biotech", secResearch}, {"Dunmore Estates", secCorporate},
}

type resellerSpec struct {
	id, name string
	zones    []string
}

// MaxResellers is the number of named demo resellers.
const MaxResellers = 8

var resellerCatalog = [MaxResellers]resellerSpec{
	{"acme-media", "Acme Media", []string{"Europe/Amsterdam", "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/London"}},
	{"northwind-voice", "Northwind Voice", []string{"America/New_York", "America/Chicago", "America/Los_Angeles", "America/Toronto", "America/Sao_Paulo"}},
	{"globex-transcribe", "Globex Transcribe", []string{"Asia/Kolkata", "Asia/Kathmandu", "Asia/Singapore", "Asia/Dubai", "Europe/London"}},
	{"initech-captions", "Initech Captions", []string{"Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/Amsterdam"}},
	{"umbrella-subtitles", "Umbrella Subtitles", []string{"Australia/Sydney", "Pacific/Auckland", "Asia/Tokyo", "Asia/Singapore"}},
	{"stark-speech", "Stark Speech", []string{"America/New_York", "Europe/London", "America/Denver"}},
	{"wayne-broadcast", "Wayne Broadcast", []string{"America/Chicago", "America/Mexico_City", "America/Bogota"}},
	{"hooli-audio", "Hooli Audio", []string{"America/Los_Angeles", "Asia/Kolkata", "Europe/Dublin"}},
}

// zoneLanguages gives the language mix of organizations in a time zone.
func zoneLanguages(zone string) []choice[string] {
	switch zone {
	case "Europe/Amsterdam":
		return []choice[string]{{"nl", 0.55}, {"en", 0.35}, {"de", 0.05}, {"fr", 0.05}}
	case "Europe/Berlin", "Europe/Vienna", "Europe/Zurich":
		return []choice[string]{{"de", 0.6}, {"en", 0.3}, {"fr", 0.05}, {"nl", 0.05}}
	case "Europe/Paris":
		return []choice[string]{{"fr", 0.65}, {"en", 0.25}, {"es", 0.05}, {"de", 0.05}}
	case "Europe/Madrid":
		return []choice[string]{{"es", 0.65}, {"en", 0.25}, {"fr", 0.1}}
	case "Europe/London", "Europe/Dublin":
		return []choice[string]{{"en", 0.85}, {"fr", 0.05}, {"de", 0.05}, {"es", 0.05}}
	case "America/Sao_Paulo":
		return []choice[string]{{"pt", 0.6}, {"es", 0.2}, {"en", 0.2}}
	case "America/Mexico_City", "America/Bogota":
		return []choice[string]{{"es", 0.75}, {"en", 0.25}}
	case "Asia/Kolkata":
		return []choice[string]{{"hi", 0.45}, {"en", 0.45}, {"ne", 0.02}, {"ar", 0.08}}
	case "Asia/Kathmandu":
		return []choice[string]{{"ne", 0.5}, {"en", 0.3}, {"hi", 0.2}}
	case "Asia/Dubai":
		return []choice[string]{{"en", 0.55}, {"ar", 0.3}, {"hi", 0.15}}
	case "Asia/Tokyo":
		return []choice[string]{{"ja", 0.7}, {"en", 0.3}}
	case "Asia/Singapore", "Australia/Sydney", "Pacific/Auckland":
		return []choice[string]{{"en", 0.85}, {"hi", 0.05}, {"ja", 0.05}, {"es", 0.05}}
	default:
		return []choice[string]{{"en", 0.8}, {"es", 0.15}, {"fr", 0.05}}
	}
}

// zoneCurrency: European organizations pay in EUR, everyone else in USD.
func zoneCurrency(zone string) string {
	if len(zone) > 7 && zone[:7] == "Europe/" {
		return "EUR"
	}
	return "USD"
}

type noticeTemplate struct {
	title, body, severity, link string
}

var noticeTemplates = []noticeTemplate{
	{"Scheduled maintenance", "The transcription API will be read-only for up to 30 minutes on Sunday between 02:00 and 03:00 UTC while we upgrade our databases.", "info", "https://status.example.com/maintenance"},
	{"New model available: nova-3 (beta)", "nova-3 is now available in beta for English, Spanish and German with up to 20% lower word error rate.", "info", "https://docs.example.com/models/nova-3"},
	{"Elevated processing times in EU region", "Jobs submitted in the EU region are taking longer than usual to complete. No data is lost; we are adding capacity.", "warning", "https://status.example.com/incidents"},
	{"Resolved: elevated processing times", "Processing times in the EU region are back to normal. Queued jobs have completed.", "info", "https://status.example.com/incidents"},
	{"Rotate your API keys", "We are retiring API keys created before 2023. Please rotate keys for all integrations within 30 days.", "critical", "https://docs.example.com/security/api-keys"},
	{"Invoices now available as PDF", "Monthly invoices can now be downloaded as PDF from the billing page.", "info", ""},
	{"Speaker diarization improvements", "Speaker labels are now more accurate for recordings with more than four speakers.", "info", "https://docs.example.com/changelog"},
	{"Upload limit raised to 10 GB", "You can now upload media files of up to 10 GB (6 hours of audio).", "info", ""},
}
