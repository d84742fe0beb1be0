"""mediapurge: bulk deletion at video-cloud vendors with rate limits, retries and a per-item audit."""
