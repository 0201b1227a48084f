// relaymesh player: plays the page's stream over LL-HLS, natively where
// the browser plays HLS (Safari), else with the vendored hls.js.
// window.relaymeshPlayers lists the transports in order of preference;
// a WebRTC (WHEP) transport can be put first later.
(function () {
  var video = document.getElementById('video');
  var stat = document.getElementById('status');
  var src = video.dataset.src;
  function show(s) { stat.textContent = s; }
  var players = window.relaymeshPlayers || [];
  players.push({
    name: 'll-hls',
    play: function (video, src) {
      if (window.Hls && Hls.isSupported()) {
        var hls = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 1 });
        hls.on(Hls.Events.ERROR, function (_, d) { if (d.fatal) show('hls.js: ' + d.details); });
        hls.loadSource(src);
        hls.attachMedia(video);
        window.relaymeshHls = hls;
        return true;
      }
      if (video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = src;
        return true;
      }
      return false;
    }
  });
  for (var i = 0; i < players.length; i++) {
    if (players[i].play(video, src)) { window.relaymeshTransport = players[i].name; break; }
  }
  video.play().catch(function () { show('press play'); });
  // frames decoded and latency behind the live edge, for people and tests
  setInterval(function () {
    var q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    var frames = q ? q.totalVideoFrames : 0;
    var lat = '';
    if (window.relaymeshHls && relaymeshHls.latency) lat = relaymeshHls.latency.toFixed(2) + ' s behind live';
    else if (video.seekable.length) lat = (video.seekable.end(video.seekable.length - 1) - video.currentTime).toFixed(2) + ' s behind live';
    window.relaymeshFrames = frames;
    show((window.relaymeshTransport || 'none') + ' | ' + frames + ' frames | ' + lat);
  }, 500);
})();
