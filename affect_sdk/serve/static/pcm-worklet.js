// AudioWorklet of the affect-sdk browser client: microphone samples -> 100 ms chunks of 16-bit PCM for the page.
// It runs on the audio thread, so it only converts and batches; the page encodes and sends.
class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 10); // sampleRate: the AudioContext's rate (a global in worklets)
    this.buffer = new Int16Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        const s = Math.max(-1, Math.min(1, channel[i]));
        this.buffer[this.filled++] = s < 0 ? s * 32768 : s * 32767;
        if (this.filled === this.size) {
          this.port.postMessage(this.buffer.buffer, [this.buffer.buffer]); // transferred, not copied
          this.buffer = new Int16Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true; // keep running while the microphone is silent too
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
