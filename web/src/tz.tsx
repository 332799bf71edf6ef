// The time zone picker: the browser's IANA list, UTC and the browser's own
// zone first.

let zones: string[] | null = null;

// ICU still lists some zones under their old names; the API (Go's tzdata)
// and people use the current ones.
const renamed: Record<string, string> = {
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Asia/Rangoon': 'Asia/Yangon',
  'Europe/Kiev': 'Europe/Kyiv',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'America/Godthab': 'America/Nuuk',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
};

function allZones(): string[] {
  if (zones) return zones;
  let list: string[] = [];
  try {
    list = (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone');
  } catch {
    list = ['Europe/Amsterdam', 'Europe/London', 'America/New_York', 'America/Los_Angeles', 'Asia/Kolkata', 'Asia/Tokyo', 'Australia/Sydney'];
  }
  list = [...new Set(list.map((z) => renamed[z] ?? z))].sort();
  const raw = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const local = renamed[raw] ?? raw;
  zones = ['UTC', ...(local && local !== 'UTC' ? [local] : []), ...list.filter((z) => z !== 'UTC' && z !== local)];
  return zones;
}

export function TimeZoneSelect({ id, value, onChange }: { id: string; value: string; onChange: (tz: string) => void }) {
  const list = allZones();
  const options = list.includes(value) ? list : [value, ...list];
  return (
    <label class="inline" for={id}>
      <span>Time zone</span>
      <select id={id} value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {options.map((z) => (
          <option value={z} key={z}>
            {z.replace(/_/g, ' ')}
          </option>
        ))}
      </select>
    </label>
  );
}
