// Telling an agent who looks elsewhere that a call is ringing: a chime, and a desktop
// notification (the browser's Notification API, asked for once, on the agent's own click).

let audio = null;

// Browsers let a page make sound only after a user gesture: the first click or key unlocks it.
function unlockAudio() {
  if (audio || typeof AudioContext === "undefined") return;
  audio = new AudioContext();
}
document.addEventListener("pointerdown", unlockAudio, { once: true, capture: true });
document.addEventListener("keydown", unlockAudio, { once: true, capture: true });

// Two short rising tones, like a desk phone: about half a second, quiet.
export function chime() {
  if (!audio) return;
  if (audio.state === "suspended") audio.resume();
  const start = audio.currentTime;
  for (const [offset, frequency] of [[0, 660], [0.18, 880]]) {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.type = "sine";
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
    tone.connect(gain).connect(audio.destination);
    tone.start(start + offset);
    tone.stop(start + offset + 0.17);
  }
}

// Asked once, when the agent makes themselves available (their own click): never on load.
export function askForNotifications() {
  if (typeof Notification === "undefined" || Notification.permission !== "default") return;
  Notification.requestPermission().catch(() => {});
}

// A desktop notification while the page is not looked at; clicking it brings the page back.
export function notify(title, body) {
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return null;
  if (document.visibilityState === "visible" && document.hasFocus()) return null;
  const note = new Notification(title, { body, tag: "tellonce-offer", requireInteraction: true });
  note.onclick = () => {
    window.focus();
    note.close();
  };
  return note;
}
