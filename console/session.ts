// The signed-in API key: this tab only (sessionStorage), or this browser when remembered (localStorage).
const STORAGE_KEY = "sdgate.apiKey";

export function savedKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY) ?? localStorage.getItem(STORAGE_KEY);
}

export function saveKey(key: string, remember: boolean): void {
  (remember ? localStorage : sessionStorage).setItem(STORAGE_KEY, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  localStorage.removeItem(STORAGE_KEY);
}
